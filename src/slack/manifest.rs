//! The Slack app's manifest (`slack-manifest.yml`, printed by `followup-bot manifest`) and the
//! bot scopes it asks for, which `doctor` compares with the installed token's.

pub const MANIFEST: &str = include_str!("../../slack-manifest.yml");

/// The bot scopes listed under `oauth_config.scopes.bot` in the manifest, in its order.
pub fn bot_scopes() -> Vec<&'static str> {
    scopes_in(MANIFEST, "bot")
}

/// The items of the `scopes:` → `{kind}:` list of a manifest (enough YAML for this file: a
/// block list under a key, each item `- name`).
fn scopes_in(manifest: &'static str, kind: &str) -> Vec<&'static str> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut lines = manifest.lines();
    let mut under_scopes = None;
    for line in lines.by_ref() {
        let text = line.split('#').next().unwrap_or_default().trim_end();
        match under_scopes {
            None if text.trim() == "scopes:" => under_scopes = Some(indent(text)),
            Some(at) if !text.trim().is_empty() && indent(text) <= at => under_scopes = None,
            Some(_) if text.trim() == format!("{kind}:") => break,
            _ => {}
        }
    }
    lines
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|text| !text.is_empty())
        .map_while(|text| text.strip_prefix("- "))
        .map(|scope| scope.trim().trim_matches('"'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifests_bot_scopes() {
        assert_eq!(
            bot_scopes(),
            [
                "chat:write",
                "commands",
                "im:write",
                "users:read",
                "users:read.email"
            ]
        );
    }

    #[test]
    fn a_list_ends_at_the_next_key() {
        const TEXT: &str = "oauth_config:\n  scopes:\n    user:\n      - a\n    bot:\n      \
                            - b # why\n      - \"c\"\n    other: x\nsettings:\n  bot:\n      - d\n";
        assert_eq!(scopes_in(TEXT, "bot"), ["b", "c"]);
        assert_eq!(scopes_in(TEXT, "user"), ["a"]);
    }
}
