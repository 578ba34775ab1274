//! Invoice numbering and the downloadable invoice document (self-contained,
//! printable HTML).

use portico_model::{Account, Invoice};

/// `12345` minor units of `USD` → `USD 123.45` (negative as `-USD 1.00`).
pub fn money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    format!("{sign}{currency} {}.{:02}", abs / 100, abs % 100)
}

/// Text for HTML: the characters that could start markup or end an attribute.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Invoice numbers run `INV-000001`, `INV-000002`, … in write order.
pub fn next_number(c: &rusqlite::Connection) -> crate::error::Result<String> {
    let n: i64 = c.query_row("SELECT count(*) FROM invoices", [], |r| r.get(0))?;
    Ok(format!("INV-{:06}", n + 1))
}

pub fn render(inv: &Invoice, account: &Account) -> String {
    let date = |t: jiff::Timestamp| t.strftime("%Y-%m-%d").to_string();
    let mut rows = String::new();
    for l in &inv.lines {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{} – {}</td><td class=n>{}</td><td class=n>{}</td></tr>\n",
            escape(&l.description),
            date(l.period_start),
            date(l.period_end),
            l.quantity,
            money(l.amount, &inv.currency)
        ));
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {number}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse;width:100%}}
td,th{{padding:.4em;border-bottom:1px solid #ddd;text-align:left}}.n{{text-align:right}}h1{{margin:0}}</style></head>
<body>
<h1>Invoice {number}</h1>
<p>Billed to <strong>{account}</strong> ({domain})<br>Issued {issued} · Due {due} · Status: {status}</p>
<table><thead><tr><th>Description</th><th>Period</th><th class=n>Qty</th><th class=n>Amount</th></tr></thead>
<tbody>
{rows}</tbody></table>
<p class=n>Subtotal {subtotal}<br>Tax ({rate}.{rate_frac:02} %) {tax}<br><strong>Total {total}</strong><br>Amount due {due_amount}</p>
</body></html>
"#,
        number = escape(&inv.number),
        account = escape(&account.name),
        domain = escape(&account.domain),
        issued = date(inv.issued_at),
        due = date(inv.due_at),
        status = inv.status.as_str(),
        subtotal = money(inv.subtotal, &inv.currency),
        rate = inv.tax_rate_bps / 100,
        rate_frac = inv.tax_rate_bps % 100,
        tax = money(inv.tax, &inv.currency),
        total = money(inv.total, &inv.currency),
        due_amount = money(inv.amount_due, &inv.currency),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn money_formats_minor_units() {
        assert_eq!(super::money(12_345, "USD"), "USD 123.45");
        assert_eq!(super::money(-100, "EUR"), "-EUR 1.00");
        assert_eq!(super::money(5, "USD"), "USD 0.05");
    }
}
