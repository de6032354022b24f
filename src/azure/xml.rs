//! Parsers for the XML bodies Azure Files returns: directory listings, share listings, range lists and
//! errors.
//!
//! One streaming pass over quick-xml events (no DOM): [`walk`] keeps the stack of open elements and hands
//! each element's text to the parser when it closes. Unknown elements are ignored, so newer service
//! versions that add fields still parse. Any malformed input is an [`XmlError`], never a panic.

use super::model::{
    ByteRange, Entry, EntryKind, ListPage, RejectedEntry, ShareItem, SharesPage, check_entry_name, parse_file_time,
    parse_http_time,
};
use quick_xml::events::Event;

/// Why a body could not be parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct XmlError(pub String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An open element: its local name, its attributes, and the text gathered so far.
#[derive(Debug, Default)]
pub struct Frame {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
}

impl Frame {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What [`walk`] reports: an element opened, or closed with its text. `path` ends with that element.
pub enum Step<'a> {
    Open(&'a [Frame]),
    Close(&'a [Frame]),
}

/// Walks a whole document, calling `on` for every element opened and closed. Fails on invalid UTF-8,
/// malformed XML, unbalanced tags, a missing root element, or a document cut short.
pub fn walk(body: &[u8], mut on: impl FnMut(Step<'_>) -> Result<(), XmlError>) -> Result<(), XmlError> {
    let text = std::str::from_utf8(body).map_err(|e| XmlError(format!("body is not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Frame> = Vec::new();
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError(format!("malformed XML at byte {}: {e}", reader.buffer_position())))?;
        match event {
            Event::Start(start) | Event::Empty(start) if seen_root && stack.is_empty() => {
                return Err(XmlError(format!("second root element <{}>", start.local_name().as_ref())));
            }
            Event::Start(start) => {
                stack.push(open_frame(&start)?);
                seen_root = true;
                on(Step::Open(&stack))?;
            }
            Event::Empty(start) => {
                stack.push(open_frame(&start)?);
                seen_root = true;
                on(Step::Open(&stack))?;
                on(Step::Close(&stack))?;
                stack.pop();
            }
            Event::End(_) => {
                if stack.is_empty() {
                    return Err(XmlError("unbalanced end tag".into()));
                }
                on(Step::Close(&stack))?;
                stack.pop();
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(XmlError("text outside the root element".into())),
                }
            }
            Event::CData(t) => match stack.last_mut() {
                Some(top) => top.text.push_str(&t.xml10_content()),
                None => return Err(XmlError("CDATA outside the root element".into())),
            },
            Event::GeneralRef(r) => {
                let top = stack.last_mut().ok_or_else(|| XmlError("entity outside the root element".into()))?;
                match r.resolve_char_ref() {
                    Ok(Some(c)) => top.text.push(c),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                        Some(s) => top.text.push_str(s),
                        None => return Err(XmlError(format!("unknown entity &{};", &*r))),
                    },
                    Err(e) => return Err(XmlError(format!("bad character reference &{};: {e}", &*r))),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError(format!(
            "document ends inside <{}>",
            stack.last().map(|f| f.name.as_str()).unwrap_or("")
        )));
    }
    if !seen_root {
        return Err(XmlError("empty document".into()));
    }
    Ok(())
}

/// [`walk`] of a document whose root element must be `<root>` (any other root fails before `on` sees it).
pub fn walk_root(
    body: &[u8],
    root: &str,
    mut on: impl FnMut(Step<'_>) -> Result<(), XmlError>,
) -> Result<(), XmlError> {
    walk(body, |step| {
        if let Step::Open([only]) = step
            && only.name != root
        {
            return Err(XmlError(format!("unexpected root <{}>, expected <{root}>", only.name)));
        }
        on(step)
    })
}

fn open_frame(start: &quick_xml::events::BytesStart<'_>) -> Result<Frame, XmlError> {
    let mut attrs = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| XmlError(format!("bad attribute: {e}")))?;
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| XmlError(format!("bad attribute value: {e}")))?;
        attrs.push((a.key.local_name().as_ref().to_string(), value.into_owned()));
    }
    Ok(Frame { name: start.local_name().as_ref().to_string(), attrs, text: String::new() })
}

fn names(path: &[Frame]) -> impl DoubleEndedIterator<Item = &str> {
    path.iter().map(|f| f.name.as_str())
}

fn parse_u64(field: &str, s: &str) -> Result<u64, XmlError> {
    s.trim().parse().map_err(|_| XmlError(format!("{field} is not a number: {s:?}")))
}

fn parse_time(field: &str, s: &str, http: bool) -> Result<Option<time::OffsetDateTime>, XmlError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let t = if http { parse_http_time(s) } else { parse_file_time(s) };
    t.map(Some).ok_or_else(|| XmlError(format!("{field} is not a time: {s:?}")))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The text of a `<Name>`: percent-decoded when the element says `Encoded="true"` (Azure does that for
/// names holding characters XML cannot carry). An encoded name that is not UTF-8 once decoded is `Err`
/// with the encoded text.
fn decoded_name(frame: &Frame) -> Result<String, String> {
    if frame.attr("Encoded").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        percent_encoding::percent_decode_str(&frame.text)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| frame.text.clone())
    } else {
        Ok(frame.text.clone())
    }
}

/// Parses a `List Directories and Files` response (`<EnumerationResults>`). Entries whose name
/// [`check_entry_name`] refuses are not in `entries` but in `rejected`.
pub fn parse_list_directory(body: &[u8]) -> Result<ListPage, XmlError> {
    let mut page = ListPage::default();
    let mut current: Option<Entry> = None;
    // The encoded text of the current entry's name when it does not decode to UTF-8.
    let mut name_not_utf8: Option<String> = None;
    walk_root(body, "EnumerationResults", |step| {
        match step {
            Step::Open(path) => {
                let mut it = names(path);
                if let (Some("EnumerationResults"), Some("Entries"), Some(kind @ ("File" | "Directory")), None) =
                    (it.next(), it.next(), it.next(), it.next())
                {
                    let kind = if kind == "File" { EntryKind::File } else { EntryKind::Directory };
                    current = Some(Entry::new(kind, ""));
                    name_not_utf8 = None;
                }
            }
            Step::Close(path) => {
                let leaf = &path[path.len() - 1];
                let text = leaf.text.trim();
                let in_entry = path.len() >= 3
                    && path[1].name == "Entries"
                    && matches!(path[2].name.as_str(), "File" | "Directory");
                if in_entry {
                    let entry = current.as_mut().ok_or_else(|| XmlError("entry field outside an entry".into()))?;
                    match (path.len(), path[path.len() - 2].name.as_str(), leaf.name.as_str()) {
                        (3, _, _) => {
                            let done = current.take().expect("checked above");
                            // A refused name drops this entry only; the rest of the page is kept.
                            let check = match name_not_utf8.take() {
                                Some(encoded) => Err((encoded, "encoded name is not UTF-8")),
                                None => check_entry_name(&done.name).map_err(|reason| (done.name.clone(), reason)),
                            };
                            match check {
                                Ok(()) => page.entries.push(done),
                                Err((name, reason)) => {
                                    page.rejected.push(RejectedEntry { name: name.escape_debug().to_string(), reason })
                                }
                            }
                        }
                        (4, _, "Name") => match decoded_name(leaf) {
                            Ok(name) => entry.name = name,
                            Err(encoded) => name_not_utf8 = Some(encoded),
                        },
                        (4, _, "FileId") => entry.file_id = non_empty(text),
                        (4, _, "Attributes") => entry.attributes = non_empty(text),
                        (4, _, "PermissionKey") => entry.permission_key = non_empty(text),
                        (5, "Properties", "Content-Length") => entry.size = parse_u64("Content-Length", text)?,
                        (5, "Properties", "CreationTime") => {
                            entry.creation_time = parse_time("CreationTime", text, false)?
                        }
                        (5, "Properties", "LastAccessTime") => {
                            entry.last_access_time = parse_time("LastAccessTime", text, false)?
                        }
                        (5, "Properties", "LastWriteTime") => {
                            entry.last_write_time = parse_time("LastWriteTime", text, false)?
                        }
                        (5, "Properties", "ChangeTime") => entry.change_time = parse_time("ChangeTime", text, false)?,
                        (5, "Properties", "Last-Modified") => {
                            entry.last_modified = parse_time("Last-Modified", text, true)?
                        }
                        (5, "Properties", "Etag") => entry.etag = non_empty(text),
                        _ => {}
                    }
                } else if path.len() == 2 {
                    match leaf.name.as_str() {
                        "NextMarker" => page.next_marker = non_empty(text),
                        "DirectoryId" => page.directory_id = non_empty(text),
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(page)
}

/// Parses a `List Shares` response.
pub fn parse_list_shares(body: &[u8]) -> Result<SharesPage, XmlError> {
    let mut page = SharesPage::default();
    let mut current: Option<ShareItem> = None;
    walk_root(body, "EnumerationResults", |step| {
        match step {
            Step::Open(path) => match path.len() {
                3 if path[1].name == "Shares" && path[2].name == "Share" => current = Some(ShareItem::default()),
                _ => {}
            },
            Step::Close(path) => {
                let leaf = &path[path.len() - 1];
                let text = leaf.text.trim();
                if path.len() == 2 && leaf.name == "NextMarker" {
                    page.next_marker = non_empty(text);
                    return Ok(());
                }
                if path.len() < 3 || path[1].name != "Shares" || path[2].name != "Share" {
                    return Ok(());
                }
                let share = current.as_mut().ok_or_else(|| XmlError("share field outside a share".into()))?;
                match (path.len(), path[path.len() - 2].name.as_str(), leaf.name.as_str()) {
                    (3, _, _) => {
                        let done = current.take().expect("checked above");
                        if done.name.is_empty() {
                            return Err(XmlError("listed share without a name".into()));
                        }
                        page.shares.push(done);
                    }
                    (4, _, "Name") => share.name = text.to_string(),
                    (4, _, "Snapshot") => share.snapshot = non_empty(text),
                    (5, "Properties", "Etag") => share.etag = non_empty(text),
                    (5, "Properties", "Last-Modified") => {
                        share.last_modified = parse_time("Last-Modified", text, true)?
                    }
                    (5, "Properties", "Quota") => share.quota_gib = Some(parse_u64("Quota", text)?),
                    (5, "Properties", "EnabledProtocols") => share.enabled_protocols = non_empty(text),
                    (5, "Metadata", key) => {
                        share.metadata.insert(key.to_string(), leaf.text.clone());
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    })?;
    Ok(page)
}

/// A parsed `List Ranges` body: ranges, cleared ranges, and the marker of the next page if any.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RangesPage {
    pub ranges: Vec<ByteRange>,
    pub clear_ranges: Vec<ByteRange>,
    pub next_marker: Option<String>,
}

/// Parses a `List Ranges` response (`<Ranges>` with `<Range>` and `<ClearRange>` children).
pub fn parse_ranges(body: &[u8]) -> Result<RangesPage, XmlError> {
    let mut page = RangesPage::default();
    let (mut start, mut end): (Option<u64>, Option<u64>) = (None, None);
    walk_root(body, "Ranges", |step| {
        match step {
            Step::Open(path) if path.len() == 2 => (start, end) = (None, None),
            Step::Open(_) => {}
            Step::Close(path) => {
                let leaf = &path[path.len() - 1];
                match (path.len(), leaf.name.as_str()) {
                    (3, "Start") => start = Some(parse_u64("Start", &leaf.text)?),
                    (3, "End") => end = Some(parse_u64("End", &leaf.text)?),
                    (2, "NextMarker") => page.next_marker = non_empty(leaf.text.trim()),
                    (2, kind @ ("Range" | "ClearRange")) => {
                        let (Some(s), Some(e)) = (start, end) else {
                            return Err(XmlError(format!("<{kind}> without Start and End")));
                        };
                        if e < s {
                            return Err(XmlError(format!("<{kind}> ends before it starts: {s}-{e}")));
                        }
                        let list = if kind == "Range" { &mut page.ranges } else { &mut page.clear_ranges };
                        list.push(ByteRange { start: s, end: e });
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    })?;
    Ok(page)
}

/// Azure's `<Error><Code>..</Code><Message>..</Message></Error>` body, if the body is one.
pub fn parse_error(body: &[u8]) -> Option<(Option<String>, Option<String>)> {
    let mut code = None;
    let mut message = None;
    walk(body, |step| {
        if let Step::Close(path) = step
            && path.len() == 2
            && path[0].name == "Error"
        {
            match path[1].name.as_str() {
                "Code" => code = non_empty(path[1].text.trim()),
                "Message" => message = super::error::first_line(&path[1].text),
                _ => {}
            }
        }
        Ok(())
    })
    .ok()?;
    (code.is_some() || message.is_some()).then_some((code, message))
}

/// Writes a listing page as the service does (used by tests; names that XML 1.0 cannot carry are
/// percent-encoded with `Encoded="true"`).
pub fn write_list_directory(page: &ListPage, share: &str, dir: &str) -> String {
    use crate::azure::model::format_file_time;
    use quick_xml::escape::escape;
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    s.push_str(&format!(
        "<EnumerationResults ServiceEndpoint=\"http://127.0.0.1/acct/\" ShareName=\"{}\" DirectoryPath=\"{}\">",
        escape(share),
        escape(dir)
    ));
    s.push_str("<Marker /><MaxResults>5000</MaxResults>");
    if let Some(id) = &page.directory_id {
        s.push_str(&format!("<DirectoryId>{}</DirectoryId>", escape(id.as_str())));
    }
    s.push_str("<Entries>");
    for e in &page.entries {
        let tag = if e.is_dir() { "Directory" } else { "File" };
        s.push_str(&format!("<{tag}>"));
        if let Some(id) = &e.file_id {
            s.push_str(&format!("<FileId>{}</FileId>", escape(id.as_str())));
        }
        if needs_encoding(&e.name) {
            let enc = percent_encoding::utf8_percent_encode(&e.name, percent_encoding::NON_ALPHANUMERIC);
            s.push_str(&format!("<Name Encoded=\"true\">{enc}</Name>"));
        } else {
            s.push_str(&format!("<Name>{}</Name>", escape(e.name.as_str())));
        }
        s.push_str("<Properties>");
        if !e.is_dir() {
            s.push_str(&format!("<Content-Length>{}</Content-Length>", e.size));
        }
        let times = [
            ("CreationTime", e.creation_time),
            ("LastAccessTime", e.last_access_time),
            ("LastWriteTime", e.last_write_time),
            ("ChangeTime", e.change_time),
        ];
        for (tag, t) in times {
            if let Some(t) = t {
                s.push_str(&format!("<{tag}>{}</{tag}>", format_file_time(t)));
            }
        }
        if let Some(t) = e.last_modified {
            s.push_str(&format!("<Last-Modified>{}</Last-Modified>", httpdate::fmt_http_date(t.into())));
        }
        if let Some(etag) = &e.etag {
            s.push_str(&format!("<Etag>{}</Etag>", escape(etag.as_str())));
        }
        s.push_str("</Properties>");
        if let Some(a) = &e.attributes {
            s.push_str(&format!("<Attributes>{}</Attributes>", escape(a.as_str())));
        }
        if let Some(k) = &e.permission_key {
            s.push_str(&format!("<PermissionKey>{}</PermissionKey>", escape(k.as_str())));
        }
        s.push_str(&format!("</{tag}>"));
    }
    s.push_str("</Entries>");
    match &page.next_marker {
        Some(m) => s.push_str(&format!("<NextMarker>{}</NextMarker>", escape(m.as_str()))),
        None => s.push_str("<NextMarker />"),
    }
    s.push_str("</EnumerationResults>");
    s
}

/// True when a name cannot be carried as XML 1.0 text unchanged (control characters, U+FFFE/FFFF), or
/// would not survive whitespace trimming.
fn needs_encoding(name: &str) -> bool {
    name.trim() != name
        || name
            .chars()
            .any(|c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}') || c == '\r')
        || name.contains(['\t', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LISTING: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="https://acct.file.core.windows.net/" ShareName="devshare" DirectoryPath="a/b">
  <Marker>m1</Marker>
  <Prefix />
  <MaxResults>2</MaxResults>
  <DirectoryId>13835128424026341376</DirectoryId>
  <Entries>
    <File>
      <FileId>13835093239654252544</FileId>
      <Name>report &amp; notes.txt</Name>
      <Properties>
        <Content-Length>1048576</Content-Length>
        <CreationTime>2026-01-02T03:04:05.1234567Z</CreationTime>
        <LastAccessTime>2026-01-03T03:04:05.0000000Z</LastAccessTime>
        <LastWriteTime>2026-01-04T03:04:05.0000000Z</LastWriteTime>
        <ChangeTime>2026-01-05T03:04:05.0000000Z</ChangeTime>
        <Last-Modified>Mon, 05 Jan 2026 03:04:05 GMT</Last-Modified>
        <Etag>"0x8DB1234"</Etag>
      </Properties>
      <Attributes>Archive | ReadOnly</Attributes>
      <PermissionKey>4066528134148476695*1</PermissionKey>
    </File>
    <Directory>
      <FileId>13835163608398430208</FileId>
      <Name Encoded="true">caf%C3%A9%01</Name>
      <Properties>
        <CreationTime>2026-01-02T03:04:05.0000000Z</CreationTime>
      </Properties>
      <Attributes>Directory</Attributes>
      <PermissionKey>k2</PermissionKey>
    </Directory>
  </Entries>
  <NextMarker>2!100!MDAwMDA</NextMarker>
</EnumerationResults>"#;

    #[test]
    fn parses_a_service_listing() {
        let page = parse_list_directory(LISTING.as_bytes()).unwrap();
        assert_eq!(page.next_marker.as_deref(), Some("2!100!MDAwMDA"));
        assert_eq!(page.directory_id.as_deref(), Some("13835128424026341376"));
        assert_eq!(page.entries.len(), 1);
        let f = &page.entries[0];
        assert_eq!(f.kind, EntryKind::File);
        assert_eq!(f.name, "report & notes.txt");
        assert_eq!(f.size, 1048576);
        assert_eq!(f.file_id.as_deref(), Some("13835093239654252544"));
        assert_eq!(f.creation_time.unwrap().nanosecond(), 123_456_700);
        assert!(f.last_access_time.is_some() && f.last_write_time.is_some() && f.change_time.is_some());
        assert_eq!(f.last_modified.unwrap().day(), 5);
        assert_eq!(f.etag.as_deref(), Some("\"0x8DB1234\""));
        assert_eq!(f.attributes.as_deref(), Some("Archive | ReadOnly"));
        assert_eq!(f.permission_key.as_deref(), Some("4066528134148476695*1"));
        // A control character is a name Azure forbids: the entry is dropped and reported, not listed.
        assert_eq!(page.rejected.len(), 1);
        assert_eq!(page.rejected[0].name, "café\\u{1}");
        assert_eq!(page.rejected[0].to_string(), "\"café\\u{1}\": name holds a control character (U+0000-U+001F)");
    }

    #[test]
    fn names_that_escape_a_directory_are_rejected_and_the_page_goes_on() {
        let body = br#"<EnumerationResults><Entries>
            <File><FileId>1</FileId><Name>ok.txt</Name><Properties><Content-Length>1</Content-Length></Properties></File>
            <File><FileId>2</FileId><Name Encoded="true">%2Fetc%2Fcron.d%2Fx</Name><Properties><Content-Length>1</Content-Length></Properties></File>
            <Directory><FileId>3</FileId><Name Encoded="true">..</Name><Properties/></Directory>
            <Directory><FileId>4</FileId><Name>.</Name><Properties/></Directory>
            <File><FileId>5</FileId><Name Encoded="true">a%5Cb</Name><Properties/></File>
            <File><FileId>6</FileId><Name Encoded="true">nul%00x</Name><Properties/></File>
            <File><FileId>7</FileId><Name></Name><Properties/></File>
            <File><FileId>9</FileId><Name Encoded="true">%FF%FE</Name><Properties/></File>
            <File><FileId>8</FileId><Name>after</Name><Properties/></File>
        </Entries></EnumerationResults>"#;
        let page = parse_list_directory(body).unwrap();
        let names: Vec<&str> = page.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["ok.txt", "after"]);
        let rejected: Vec<&str> = page.rejected.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(rejected, ["/etc/cron.d/x", "..", ".", "a\\\\b", "nul\\0x", "", "%FF%FE"]);
        assert!(check_entry_name(&"é".repeat(255)).is_ok());
        assert!(check_entry_name(&"😀".repeat(128)).is_err(), "256 UTF-16 units");
    }

    #[test]
    fn last_page_has_no_marker() {
        let page = parse_list_directory(b"<EnumerationResults><Entries/><NextMarker/></EnumerationResults>").unwrap();
        assert_eq!(page, ListPage::default());
    }

    #[test]
    fn malformed_listings_are_errors() {
        for bad in [
            &b""[..],
            b"<EnumerationResults><Entries>",
            b"<EnumerationResults></Entries>",
            b"<Other/>",
            b"<EnumerationResults><Entries><File><Properties><Content-Length>x</Content-Length></Properties><Name>a</Name></File></Entries></EnumerationResults>",
            b"<EnumerationResults/><EnumerationResults/>",
            b"\xff\xfe<EnumerationResults/>",
            b"<EnumerationResults>&bogus;</EnumerationResults>",
        ] {
            assert!(parse_list_directory(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn parses_shares() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="x"><Shares>
            <Share><Name>one</Name><Properties><Last-Modified>Mon, 05 Jan 2026 03:04:05 GMT</Last-Modified><Etag>"e1"</Etag><Quota>5120</Quota></Properties><Metadata><k>v</k></Metadata></Share>
            <Share><Name>one</Name><Snapshot>2026-01-01T00:00:00.0000000Z</Snapshot><Properties><Quota>5120</Quota><EnabledProtocols>NFS</EnabledProtocols></Properties></Share>
            </Shares><NextMarker>next</NextMarker></EnumerationResults>"#;
        let page = parse_list_shares(body).unwrap();
        assert_eq!(page.next_marker.as_deref(), Some("next"));
        assert_eq!(page.shares.len(), 2);
        assert_eq!(page.shares[0].name, "one");
        assert_eq!(page.shares[0].quota_gib, Some(5120));
        assert_eq!(page.shares[0].metadata.get("k").map(String::as_str), Some("v"));
        assert_eq!(page.shares[1].snapshot.as_deref(), Some("2026-01-01T00:00:00.0000000Z"));
        assert_eq!(page.shares[1].enabled_protocols.as_deref(), Some("NFS"));
    }

    #[test]
    fn parses_ranges_and_clear_ranges() {
        let body = b"<?xml version=\"1.0\"?><Ranges><Range><Start>0</Start><End>511</End></Range><ClearRange><Start>512</Start><End>1023</End></ClearRange><Range><Start>4096</Start><End>8191</End></Range></Ranges>";
        let page = parse_ranges(body).unwrap();
        assert_eq!(page.ranges, [ByteRange { start: 0, end: 511 }, ByteRange { start: 4096, end: 8191 }]);
        assert_eq!(page.clear_ranges, [ByteRange { start: 512, end: 1023 }]);
        assert_eq!(page.ranges[1].len(), 4096);
        assert_eq!(parse_ranges(b"<Ranges/>").unwrap(), RangesPage::default());
        assert!(parse_ranges(b"<Ranges><Range><Start>9</Start><End>1</End></Range></Ranges>").is_err());
        assert!(parse_ranges(b"<Ranges><Range><Start>9</Start></Range></Ranges>").is_err());
    }

    #[test]
    fn parses_errors() {
        let body = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ShareNotFound</Code><Message>The specified share does not exist.\nRequestId:abc\nTime:2026-01-01T00:00:00Z</Message></Error>";
        let (code, message) = parse_error(body.as_bytes()).unwrap();
        assert_eq!(code.as_deref(), Some("ShareNotFound"));
        assert_eq!(message.as_deref(), Some("The specified share does not exist."));
        assert_eq!(parse_error(b"not xml"), None);
        assert_eq!(parse_error(b""), None);
    }

    fn arb_time() -> impl Strategy<Value = Option<time::OffsetDateTime>> {
        // Whole 100 ns ticks between 1990 and 2100, as the service keeps them.
        proptest::option::of((631_152_000i64..4_102_444_800, 0u32..10_000_000).prop_map(|(s, ticks)| {
            time::OffsetDateTime::from_unix_timestamp(s).unwrap() + time::Duration::nanoseconds(ticks as i64 * 100)
        }))
    }

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            any::<bool>(),
            "\\PC{1,40}|[\\x00-\\x1f ]{1,5}[a-z]{0,3}",
            proptest::option::of("[0-9]{1,20}"),
            any::<u64>(),
            (arb_time(), arb_time(), arb_time(), arb_time()),
            proptest::option::of(0i64..4_102_444_800),
            proptest::option::of("\"0x[0-9A-F]{15}\""),
            proptest::option::of("(Archive|ReadOnly|Hidden|Directory)( \\| (Archive|System))?"),
            proptest::option::of("[0-9]{5,19}\\*[0-9]"),
        )
            .prop_map(|(dir, name, file_id, size, (c, a, w, ch), lm, etag, attributes, permission_key)| {
                Entry {
                    kind: if dir { EntryKind::Directory } else { EntryKind::File },
                    name,
                    file_id,
                    size: if dir { 0 } else { size },
                    creation_time: c,
                    last_access_time: a,
                    last_write_time: w,
                    change_time: ch,
                    last_modified: lm.map(|s| time::OffsetDateTime::from_unix_timestamp(s).unwrap()),
                    etag,
                    attributes,
                    permission_key,
                }
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_list_directory(&body);
            let _ = parse_list_shares(&body);
            let _ = parse_ranges(&body);
            let _ = parse_error(&body);
        }

        #[test]
        fn mangled_listings_never_panic(cut in 0usize..2000, flip in 0usize..2000, byte in any::<u8>()) {
            let mut body = LISTING.as_bytes().to_vec();
            let flip = flip % body.len();
            body[flip] = byte;
            body.truncate(cut.min(body.len()));
            let _ = parse_list_directory(&body);
        }

        #[test]
        fn generated_listings_round_trip(
            entries in proptest::collection::vec(arb_entry(), 0..20),
            next_marker in proptest::option::of("[!-~]{1,30}"),
            directory_id in proptest::option::of("[0-9]{1,20}"),
        ) {
            let page = ListPage { entries, next_marker, directory_id, rejected: Vec::new() };
            let xml = write_list_directory(&page, "share & co", "a/<b>");
            let back = parse_list_directory(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {xml}")))?;
            // Every entry comes back: kept when its name passes the check, otherwise reported as rejected.
            let (kept, refused): (Vec<Entry>, Vec<Entry>) =
                page.entries.iter().cloned().partition(|e| check_entry_name(&e.name).is_ok());
            prop_assert_eq!(&back.entries, &kept);
            let refused: Vec<String> = refused.iter().map(|e| e.name.escape_debug().to_string()).collect();
            let back_refused: Vec<String> = back.rejected.iter().map(|r| r.name.clone()).collect();
            prop_assert_eq!(back_refused, refused);
            prop_assert_eq!(back.next_marker, page.next_marker);
            prop_assert_eq!(back.directory_id, page.directory_id);
        }

        #[test]
        fn accepted_names_are_one_safe_component(name in "\\PC{0,20}|[./\\\\\\x00-\\x1f a-z]{0,6}", raw in proptest::collection::vec(any::<u8>(), 0..40)) {
            let encoded = percent_encoding::percent_encode(&raw, percent_encoding::NON_ALPHANUMERIC).to_string();
            for name in [name, String::from_utf8_lossy(&raw).into_owned()] {
                if check_entry_name(&name).is_ok() {
                    let p = std::path::Path::new(&name);
                    let parts: Vec<_> = p.components().collect();
                    prop_assert!(matches!(parts.as_slice(), [std::path::Component::Normal(c)] if *c == name.as_str()), "{:?}", name);
                    prop_assert!(!name.contains('\\') && !name.contains('\0'));
                }
            }
            // Any encoded name in a listing: no panic, and whatever is kept passes the check.
            let body = format!("<EnumerationResults><Entries><File><Name Encoded=\"true\">{encoded}</Name></File></Entries></EnumerationResults>");
            let page = parse_list_directory(body.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
            for e in &page.entries {
                prop_assert!(check_entry_name(&e.name).is_ok());
            }
            prop_assert_eq!(page.entries.len() + page.rejected.len(), 1);
        }
    }
}
