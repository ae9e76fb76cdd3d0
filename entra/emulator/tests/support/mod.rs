//! What the emulator's test files share: a browser's view of the emulator's pages.

/// Posts the form around the first occurrence of `marker` in `html`, as a click on it would.
pub async fn submit(http: &reqwest::Client, html: &str, marker: &str) -> reqwest::Response {
    let at = html.find(marker).unwrap_or_else(|| panic!("no {marker} in {html}"));
    let start = html[..at].rfind("<form").unwrap();
    let form = &html[start..at];
    let action = unescape(form.split("action=\"").nth(1).unwrap().split('"').next().unwrap());
    let fields: Vec<(String, String)> = form
        .split("<input type=\"hidden\" ")
        .skip(1)
        .map(|input| {
            let attr =
                |name: &str| unescape(input.split(&format!("{name}=\"")).nth(1).unwrap().split('"').next().unwrap());
            (attr("name"), attr("value"))
        })
        .collect();
    http.post(action).form(&fields).send().await.unwrap()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}
