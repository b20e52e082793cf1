//! The team's CRM (Crono first): connecting it (`/crono-connect`, admins and owners only),
//! autocomplete, `/crono-add-task`, `/crono-add-note`, `/crono-search`, the follow-up's CRM
//! Note / View Deals / Create Task buttons, open deals and their edit, and the one job that
//! writes to the CRM; the CRM mirror's sync. `/crm-*` spellings answer too.

use std::sync::Arc;

use crate::dispatch::Route;
use crate::registry::Features;

mod connect;
mod deals;
mod followup;
mod jobs;
mod mirror;
mod note;
mod oauth;
mod search;
mod suggest;
mod task;
mod views;

pub use deals::parse_amount;
pub use followup::note_text;
pub use jobs::WRITE_JOB;
pub use mirror::{TeamRun, sync_once, sync_team};

use crate::services::home::actions as home;
use search::{SearchButton, Then};
use views::Purpose;

pub fn register(features: &mut Features) {
    for prefix in ["/crono", "/crm"] {
        features.command(&format!("{prefix}-connect"), connect::ConnectCommand);
        features.command(&format!("{prefix}-disconnect"), connect::DisconnectCommand);
        features.command(&format!("{prefix}-add-task"), task::TaskCommand);
        features.command(&format!("{prefix}-add-note"), note::NoteCommand);
        features.command(&format!("{prefix}-search"), search::SearchCommand);
    }
    // The same, from App Home's buttons (offered to admins; checked again here).
    features.action(home::CRM_CONNECT, connect::ConnectCommand);
    features.action(home::CRM_DISCONNECT, connect::DisconnectCommand);
    features.submission(connect::CALLBACK, connect::ConnectSubmit);
    features.submission(task::CALLBACK, task::TaskSubmit);
    features.submission(note::CALLBACK, note::NoteSubmit);
    features.submission(deals::CALLBACK, deals::DealSubmit);
    features.submission(followup::PICK_CALLBACK, followup::PickSubmit);
    features.route(
        Route::Suggestion("crm_contact".to_owned()),
        suggest::Suggest(suggest::List::Contacts),
    );
    features.route(
        Route::Suggestion("crm_account".to_owned()),
        suggest::Suggest(suggest::List::Accounts),
    );
    features.action("crm_deal_edit", deals::EditDeal);
    for (id, then, contact) in [
        ("crm_search_note", Then::Note, false),
        ("crm_search_task", Then::Task, false),
        ("crm_search_deals", Then::Deals, false),
        ("crm_search_contact_note", Then::Note, true),
        ("crm_search_contact_task", Then::Task, true),
        ("crm_search_contact_deals", Then::Deals, true),
    ] {
        features.action(id, SearchButton { then, contact });
    }
    for (id, purpose) in [
        ("followup_crm_note", Purpose::Note),
        ("followup_deals", Purpose::Deals),
        ("followup_task", Purpose::Task),
    ] {
        features.action(id, followup::FollowupButton(purpose));
    }
    features.jobs.add(WRITE_JOB, Arc::new(jobs::WriteToCrm));
    mirror::register(features);
    features.http.push(Box::new(oauth::routes));
    // The link button of the connect window: Slack reports the click; the browser does the rest.
    features.action("crm_oauth_open", connect::LinkOpened);
}
