//! What the bot reads from and writes to a team's CRM, whichever CRM it is: accounts,
//! contacts, deals and their stages, notes and tasks; and the rules for matching a meeting's
//! attendees to an account.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub website: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub account_id: Option<String>,
    pub account_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deal {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// The provider's stage id.
    pub stage: String,
    pub amount: Option<f64>,
    pub currency: Option<String>,
    pub close_date: Option<String>,
}

/// One stage of the provider's deal pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub id: String,
    pub label: String,
    /// Won or lost: a deal there is not open.
    pub closed: bool,
}

/// The kinds of task a seller makes (the settings' `default_task_type` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskType {
    Email,
    Call,
    Linkedin,
    Inmail,
}

impl TaskType {
    pub const ALL: [TaskType; 4] = [
        TaskType::Email,
        TaskType::Call,
        TaskType::Linkedin,
        TaskType::Inmail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Email => "email",
            TaskType::Call => "call",
            TaskType::Linkedin => "linkedin",
            TaskType::Inmail => "inmail",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TaskType::Email => "Email",
            TaskType::Call => "Call",
            TaskType::Linkedin => "LinkedIn",
            TaskType::Inmail => "InMail",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(value.trim()))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewNote {
    pub account_id: String,
    pub text: String,
    #[serde(default)]
    pub deal_id: Option<String>,
    #[serde(default)]
    pub contact_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    pub account_id: String,
    pub contact_id: Option<String>,
    pub kind: TaskType,
    pub subject: String,
    pub description: String,
    /// When it is due (the person's local time, converted).
    pub due: DateTime<Utc>,
    /// The day it is due in the person's time zone, for CRMs whose tasks carry a date only.
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
}

impl NewTask {
    /// The person's local due date (the UTC date for requests stored before it was kept).
    pub fn local_date(&self) -> NaiveDate {
        self.due_date.unwrap_or_else(|| self.due.date_naive())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DealChange {
    pub deal_id: String,
    pub account_id: String,
    pub amount: Option<f64>,
    pub stage: Option<String>,
    pub description: Option<String>,
}

/// A record the bot made in the CRM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Made {
    pub id: String,
}

/// What the mirror keeps of a team's CRM, one sync cursor each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MirrorObject {
    Accounts,
    Contacts,
    /// Open deals only: a closed or deleted deal leaves the mirror.
    Deals,
}

impl MirrorObject {
    pub const ALL: [MirrorObject; 3] = [
        MirrorObject::Accounts,
        MirrorObject::Contacts,
        MirrorObject::Deals,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MirrorObject::Accounts => "accounts",
            MirrorObject::Contacts => "contacts",
            MirrorObject::Deals => "deals",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == value)
    }
}

/// One page to ask a CRM for: the records of one kind changed since `since` (all of them
/// without), continuing after the provider's paging token `after`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    pub since: Option<DateTime<Utc>>,
    pub after: Option<String>,
}

/// A record as a listing gives it.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Account(Account),
    Contact(Contact),
    /// Every deal changed, open or not: `open: false` (won, lost, archived) leaves the mirror.
    Deal {
        deal: Deal,
        open: bool,
    },
}

impl Record {
    pub fn id(&self) -> &str {
        match self {
            Record::Account(a) => &a.id,
            Record::Contact(c) => &c.id,
            Record::Deal { deal, .. } => &deal.id,
        }
    }
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listed {
    pub records: Vec<Record>,
    /// The newest modification time on the page, as the provider stamps it (where it does).
    pub newest: Option<DateTime<Utc>>,
    /// The token for the next page; `None` on the last.
    pub next: Option<String>,
}

/// A provider's modification time: RFC 3339 (with any offset), or Odoo's UTC
/// `YYYY-MM-DD HH:MM:SS`.
pub fn parse_modified(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// Mailbox providers whose domain says nothing about the company.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.it",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.it",
    "yahoo.fr",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "libero.it",
    "virgilio.it",
    "tiscali.it",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "mail.com",
    "zoho.com",
    "yandex.com",
    "yandex.ru",
    "qq.com",
    "163.com",
];

pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL.contains(&domain.to_ascii_lowercase().as_str())
}

/// The company domain of an email address (`None` for free mail or no domain).
pub fn company_domain(email: &str) -> Option<String> {
    let domain = email.rsplit_once('@')?.1.trim().to_ascii_lowercase();
    (!domain.is_empty() && domain.contains('.') && !is_free_mail(&domain)).then_some(domain)
}

/// A website as a bare domain: no scheme, `www.`, port, path or trailing dot.
pub fn website_domain(website: &str) -> Option<String> {
    let s = website.trim().to_ascii_lowercase();
    let s = s.split_once("://").map_or(s.as_str(), |(_, rest)| rest);
    let host = s.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next()?.trim_end_matches('.');
    let host = host.strip_prefix("www.").unwrap_or(host);
    (!host.is_empty() && host.contains('.')).then(|| host.to_owned())
}

/// The contacts whose email is exactly `email` (case aside): a CRM's filter is its own,
/// exactness is the bot's.
pub fn with_email(contacts: impl IntoIterator<Item = Contact>, email: &str) -> Vec<Contact> {
    let email = email.trim();
    contacts
        .into_iter()
        .filter(|c| {
            c.email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email))
        })
        .collect()
}

/// The accounts whose website is exactly `domain` (`www.` and scheme aside).
pub fn with_domain(accounts: impl IntoIterator<Item = Account>, domain: &str) -> Vec<Account> {
    accounts
        .into_iter()
        .filter(|a| {
            a.website
                .as_deref()
                .and_then(website_domain)
                .is_some_and(|w| w == domain)
        })
        .collect()
}

/// The part of a domain a company's name most likely contains (`tinexta` of `tinexta.com`).
pub fn domain_stem(domain: &str) -> &str {
    domain.split('.').next().unwrap_or(domain)
}

/// How sure the bot is which account a meeting was with.
#[derive(Clone, Debug, PartialEq)]
pub enum AccountMatch {
    /// One account, by an exact contact email or an exact website domain.
    One(Account),
    /// Several accounts look right: the person picks.
    Ambiguous(Vec<Account>),
    /// Nothing matched exactly: the person picks.
    None,
}

impl AccountMatch {
    /// From the candidates one rule found (deduplicated by id).
    pub fn of(mut candidates: Vec<Account>) -> Self {
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|a| seen.insert(a.id.clone()));
        match candidates.len() {
            0 => AccountMatch::None,
            1 => AccountMatch::One(candidates.remove(0)),
            _ => AccountMatch::Ambiguous(candidates),
        }
    }

    /// The accounts the person may want offered first.
    pub fn candidates(&self) -> Vec<Account> {
        match self {
            AccountMatch::One(a) => vec![a.clone()],
            AccountMatch::Ambiguous(list) => list.clone(),
            AccountMatch::None => Vec::new(),
        }
    }
}

/// A label that fits Slack's 75 characters for an option: "Name (Account) – email",
/// shortening the name and account before the email goes.
pub fn contact_label(contact: &Contact) -> String {
    const MAX: usize = 75;
    let name = if contact.name.trim().is_empty() {
        "(no name)"
    } else {
        contact.name.trim()
    };
    let account = contact
        .account_name
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    let email = contact
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let tail = email.map(|e| format!(" – {e}")).unwrap_or_default();
    let mut head = match account {
        Some(a) => format!("{name} ({a})"),
        None => name.to_owned(),
    };
    let room = MAX.saturating_sub(tail.chars().count());
    if room < 12 {
        // A very long email: the name, cut, is what matters.
        return cut(&format!("{head}{tail}"), MAX);
    }
    if head.chars().count() > room {
        head = match account {
            Some(a) => {
                let name_room = room.saturating_sub(3) / 2;
                let name = cut(name, name_room.max(4));
                let a_room = room.saturating_sub(name.chars().count() + 3);
                format!("{name} ({})", cut(a, a_room.max(1)))
            }
            None => cut(name, room),
        };
        head = cut(&head, room);
    }
    format!("{head}{tail}")
}

/// At most `max` characters, ending in "…" when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: &str, account: Option<&str>, email: Option<&str>) -> Contact {
        Contact {
            id: "c".into(),
            name: name.into(),
            email: email.map(Into::into),
            account_id: None,
            account_name: account.map(Into::into),
        }
    }

    #[test]
    fn labels_fit_75_characters_and_keep_the_email() {
        let short = contact(
            "Ada Lovelace",
            Some("Analytical"),
            Some("ada@analytical.example"),
        );
        assert_eq!(
            contact_label(&short),
            "Ada Lovelace (Analytical) – ada@analytical.example"
        );
        let long = contact(
            &"Bartholomew ".repeat(6),
            Some(&"Very Long Company Name Incorporated ".repeat(3)),
            Some("bart@very-long-company.example"),
        );
        let label = contact_label(&long);
        assert!(label.chars().count() <= 75, "{label}");
        assert!(
            label.ends_with(" – bart@very-long-company.example"),
            "{label}"
        );
        assert!(label.contains('('), "{label}");
        let huge_email = contact("Ann", None, Some(&format!("{}@x.example", "a".repeat(90))));
        assert!(contact_label(&huge_email).chars().count() <= 75);
        assert_eq!(contact_label(&contact("Bo", None, None)), "Bo");
    }

    #[test]
    fn domains_ignore_free_mail_and_normalise_websites() {
        assert_eq!(
            company_domain("a@Tinexta.com").as_deref(),
            Some("tinexta.com")
        );
        assert_eq!(company_domain("a@gmail.com"), None);
        assert_eq!(company_domain("nobody"), None);
        assert_eq!(
            website_domain("https://www.Tinexta.com/en/").as_deref(),
            Some("tinexta.com")
        );
        assert_eq!(
            website_domain("tinext.io:443").as_deref(),
            Some("tinext.io")
        );
        assert_eq!(website_domain(""), None);
        assert_eq!(domain_stem("tinexta.com"), "tinexta");
    }

    #[test]
    fn one_candidate_is_a_match_two_are_ambiguous() {
        let a = |id: &str| Account {
            id: id.into(),
            name: id.into(),
            website: None,
        };
        assert_eq!(AccountMatch::of(vec![]), AccountMatch::None);
        assert_eq!(
            AccountMatch::of(vec![a("1"), a("1")]),
            AccountMatch::One(a("1"))
        );
        assert!(matches!(
            AccountMatch::of(vec![a("1"), a("2")]),
            AccountMatch::Ambiguous(v) if v.len() == 2
        ));
    }
}
