//! What every OAuth flow's browser side shares: small HTML pages (never cached or framed,
//! sending no referrer, as their URLs hold codes), and the cookie that ties a callback to the
//! browser that opened the start link.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::clients::google::escape_html;

/// The cookie that ties the callback to the browser that opened the link.
pub const COOKIE: &str = "followup_oauth";

/// A small HTML page with a title and one paragraph.
pub fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;\
         padding:0 1rem;line-height:1.5}}</style></head>\
         <body><h1>{t}</h1><p>{x}</p></body></html>",
        t = escape_html(title),
        x = escape_html(text)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A plain HTML document: a title and sections of one paragraph each.
pub fn document(status: StatusCode, title: &str, sections: &[(&str, String)]) -> Response {
    let body: String = sections
        .iter()
        .map(|(heading, text)| {
            format!(
                "<h2>{}</h2><p>{}</p>",
                escape_html(heading),
                escape_html(text)
            )
        })
        .collect();
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;\
         padding:0 1rem;line-height:1.5}}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = escape_html(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// The browser's OAuth cookie, if it sent one.
pub fn browser_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

/// A redirect to the provider's consent page that leaves the browser its cookie.
pub fn consent_redirect(location: &str, browser: &str, secure: bool) -> Response {
    let secure = if secure { "; Secure" } else { "" };
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{COOKIE}={browser}; Path=/oauth; Max-Age=600; HttpOnly; SameSite=Lax{secure}"
    )) {
        headers.insert(header::SET_COOKIE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
