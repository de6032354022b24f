//! Small helpers for the XML bodies Azure Files returns (written as strings: the shapes are fixed).

use std::fmt::Write as _;

/// Escapes text for element content or a double-quoted attribute.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// True if XML 1.0 can carry every character of `s`.
pub fn is_xml_safe(s: &str) -> bool {
    s.chars().all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
}

/// Percent-encodes every byte of `s` except unreserved URL characters (what the SDKs `unquote`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `<Tag>value</Tag>`, or `<Tag Encoded="true">percent-encoded</Tag>` when the value holds characters
/// XML cannot carry (how Azure returns such names since version 2020-06-12).
pub fn push_name_element(out: &mut String, tag: &str, value: &str) {
    if is_xml_safe(value) {
        push_element(out, tag, value);
    } else {
        let _ = write!(out, "<{tag} Encoded=\"true\">{}</{tag}>", percent_encode(value));
    }
}

/// `<Tag>escaped value</Tag>`.
pub fn push_element(out: &mut String, tag: &str, value: &str) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    // Borrowed unless something needed escaping: no allocation per element.
    out.push_str(&quick_xml::escape::escape(value));
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}
