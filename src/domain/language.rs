//! The languages a draft can be written in, by the codes Fathom and the settings use.

/// (code, English name).
pub const LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("it", "Italian"),
    ("es", "Spanish"),
    ("fr", "French"),
    ("de", "German"),
    ("pt", "Portuguese"),
    ("nl", "Dutch"),
];

/// The name of a language given as a code (`it`, `pt-BR`) or a name (`Italian`).
pub fn language_name(code: &str) -> Option<&'static str> {
    let code = code.trim().to_ascii_lowercase();
    let short = code.split(['-', '_']).next().unwrap_or(&code);
    LANGUAGES
        .iter()
        .find(|(c, name)| *c == short || name.eq_ignore_ascii_case(&code))
        .map(|(_, name)| *name)
}
