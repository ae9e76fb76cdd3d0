//! Whole HTML documents for routes outside the Leptos app (error pages, the presenter view):
//! the app's look and top bar, rendered once on the server, with nothing to hydrate.

use leptos::prelude::*;

use crate::ui::STYLESHEET;

/// The document around `main` (built inside the page's reactive owner, so components in it
/// work): `title` gets the app's name appended, `nav` sits in the top bar.
pub fn render<M: IntoView + 'static>(
    title: &str,
    body_class: Option<&'static str>,
    nav: impl IntoView + 'static,
    main: impl FnOnce() -> M,
) -> String {
    let title = format!("{title} · Orders Copilot");
    let owner = Owner::new();
    owner.with(|| {
        let main = main();
        view! {
            <!DOCTYPE html>
            <html lang="en">
                <head>
                    <meta charset="utf-8" />
                    <meta name="viewport" content="width=device-width, initial-scale=1" />
                    <title>{title}</title>
                    <link rel="stylesheet" href=STYLESHEET />
                </head>
                <body class=body_class>
                    <header class="topbar">
                        <a class="brand" href="/">
                            <span class="brand-mark" aria-hidden="true"></span>
                            "Orders Copilot"
                        </a>
                        {nav}
                    </header>
                    {main}
                </body>
            </html>
        }
        .to_html()
    })
}
