//! "My orders": the orders the signed-in user may see, fetched through orders-mcp exactly as
//! the agent does (so an administrator sees everyone's).

use leptos::prelude::*;

use super::notice::ServerError;
use super::trace::HopChain;
use crate::server_fns::my_orders;
use crate::views::OrdersView;

#[component]
pub fn OrdersPage() -> impl IntoView {
    let orders = Resource::new(|| (), |_| my_orders());
    view! {
        <section class="orders">
            <h1>"My orders"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Loading orders…"</p> }>
                {move || Suspend::new(async move {
                    match orders.await {
                        Ok(view) => view! { <OrdersTable view /> }.into_any(),
                        Err(error) => view! { <ServerError error return_to="/orders" /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn OrdersTable(view: OrdersView) -> impl IntoView {
    let OrdersView { orders, hops, names } = view;
    let count = orders.len();
    let rows = orders
        .into_iter()
        .map(|o| {
            let status_class = format!("status {}", o.status);
            view! {
                <tr>
                    <th scope="row">{o.id}</th>
                    <td>{o.product}</td>
                    <td class="num">{o.quantity}</td>
                    <td>
                        <span class=status_class>{o.status}</span>
                    </td>
                    <td>{o.customer_name}</td>
                    <td>{o.created_at.get(..10).map(str::to_string).unwrap_or(o.created_at.clone())}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="muted">{format!("{count} order(s) visible to you.")}</p>
        <div class="table-wrap">
            <table>
                <thead>
                    <tr>
                        <th scope="col">"Order"</th>
                        <th scope="col">"Product"</th>
                        <th scope="col" class="num">
                            "Qty"
                        </th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Customer"</th>
                        <th scope="col">"Created"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <details class="trace compact">
            <summary>"Identity trace of this page's request"</summary>
            <HopChain hops names />
        </details>
    }
}
