//! Subscription changes and their money: proration to the second, in integer
//! minor units.
//!
//! The same [`quote`] answers the preview and performs the change, given the
//! same `proration_at` instant, so the preview and the result agree to the
//! cent. Rules (see `docs/billing.md`):
//!
//! - Upgrades (the new per-period price is not lower) take effect now: the
//!   unused time on the old plan is credited and the remaining time on the
//!   new one charged, both prorated to the second.
//! - Plan downgrades take effect at the end of the period by default; `now`
//!   may be asked for, which credits the difference to the account.
//! - Seat changes on the same plan take effect now: added seats are charged,
//!   removed seats credited, prorated to the second.
//! - Credit is carried on the subscription and applied to the next charge
//!   before tax.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::PlanId;
use crate::records::{InvoiceLine, InvoiceLineKind, Plan, Subscription, SubscriptionStatus};

/// When a change takes effect.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    Now,
    PeriodEnd,
}

/// What a subscription change costs, and what it does.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub from_plan_id: PlanId,
    pub to_plan_id: PlanId,
    pub from_seats: u32,
    pub to_seats: u32,
    pub timing: Timing,
    /// The instant the proration is computed for; pass it back to confirm.
    pub proration_at: Timestamp,
    pub effective_at: Timestamp,
    pub currency: String,
    /// Charged now (prorations, applied credit). Empty for period-end changes.
    pub lines: Vec<InvoiceLine>,
    pub subtotal: i64,
    pub tax_rate_bps: u32,
    pub tax: i64,
    /// Due now, minor units (never negative).
    pub total: i64,
    /// Credit added to the account's balance by this change.
    pub credit_added: i64,
    /// What the subscription will cost per period after the change.
    pub next_period_amount: i64,
}

/// Why a change cannot be made. `code()` is stable for clients to branch on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRejected {
    #[error("the subscription is {0}; only active or trialing subscriptions can change")]
    NotActive(&'static str),
    #[error("nothing to change: the plan and seat count are already as asked")]
    NoChange,
    #[error("{plan} allows {min} to {max} seats; {asked} were asked for")]
    SeatsOutOfRange {
        plan: String,
        min: u32,
        max: u32,
        asked: u32,
    },
    #[error("{assigned} users hold seats; remove users before going below {assigned} seats")]
    BelowAssigned { assigned: u32 },
    #[error("the new plan is billed in {to}, the subscription in {from}")]
    CurrencyMismatch { from: String, to: String },
    #[error("proration time must fall inside the current period")]
    OutsidePeriod,
    #[error(
        "upgrades and seat changes take effect now; only a plan downgrade can wait for the period end"
    )]
    TimingNotAllowed,
}

impl ChangeRejected {
    pub fn code(&self) -> &'static str {
        match self {
            ChangeRejected::NotActive(_) => "subscription_not_active",
            ChangeRejected::NoChange => "no_change",
            ChangeRejected::SeatsOutOfRange { .. } => "seats_out_of_range",
            ChangeRejected::BelowAssigned { .. } => "seats_below_assigned",
            ChangeRejected::CurrencyMismatch { .. } => "currency_mismatch",
            ChangeRejected::OutsidePeriod => "outside_period",
            ChangeRejected::TimingNotAllowed => "timing_not_allowed",
        }
    }
}

/// `amount * num / den`, rounded half away from zero, without overflow.
pub fn scale_rounded(amount: i64, num: i64, den: i64) -> i64 {
    assert!(den > 0, "denominator must be positive");
    let p = amount as i128 * num as i128;
    let d = den as i128;
    let q = p / d;
    let r = p % d;
    let rounded = if 2 * r.abs() >= d { q + p.signum() } else { q };
    rounded as i64
}

/// The part of `amount` (a full-period price) covering `remaining` of `period` seconds.
pub fn prorate(amount: i64, remaining_secs: i64, period_secs: i64) -> i64 {
    scale_rounded(amount, remaining_secs, period_secs)
}

/// Tax on `amount` at `bps` basis points, rounded half away from zero.
pub fn tax(amount: i64, bps: u32) -> i64 {
    scale_rounded(amount, bps as i64, 10_000)
}

/// A requested change of plan and/or seats.
#[derive(Debug, Clone, Copy)]
pub struct ChangeRequest<'a> {
    pub to_plan: &'a Plan,
    pub to_seats: u32,
    /// Only for plan downgrades; `None` means the default for the change.
    pub timing: Option<Timing>,
    pub at: Timestamp,
}

/// Prices a change of `sub` (currently on `from_plan`, with `assigned` users
/// holding seats). Pure: call it for the preview and again to apply.
pub fn quote(
    sub: &Subscription,
    from_plan: &Plan,
    assigned: u32,
    req: ChangeRequest<'_>,
) -> Result<Quote, ChangeRejected> {
    let to_plan = req.to_plan;
    match sub.status {
        SubscriptionStatus::Active | SubscriptionStatus::Trialing => {}
        other => return Err(ChangeRejected::NotActive(other.as_str())),
    }
    if to_plan.id == from_plan.id && req.to_seats == sub.seats {
        return Err(ChangeRejected::NoChange);
    }
    if req.to_seats < to_plan.min_seats || req.to_seats > to_plan.max_seats {
        return Err(ChangeRejected::SeatsOutOfRange {
            plan: to_plan.name.clone(),
            min: to_plan.min_seats,
            max: to_plan.max_seats,
            asked: req.to_seats,
        });
    }
    if req.to_seats < assigned {
        return Err(ChangeRejected::BelowAssigned { assigned });
    }
    if to_plan.currency != from_plan.currency {
        return Err(ChangeRejected::CurrencyMismatch {
            from: from_plan.currency.clone(),
            to: to_plan.currency.clone(),
        });
    }
    if req.at < sub.current_period_start || req.at >= sub.current_period_end {
        return Err(ChangeRejected::OutsidePeriod);
    }

    let old_amount = from_plan.seat_price * sub.seats as i64;
    let new_amount = to_plan.seat_price * req.to_seats as i64;
    let plan_downgrade = to_plan.id != from_plan.id && new_amount < old_amount;
    let timing = match (req.timing, plan_downgrade) {
        (None, true) => Timing::PeriodEnd,
        (None, false) | (Some(Timing::Now), _) => Timing::Now,
        (Some(Timing::PeriodEnd), true) => Timing::PeriodEnd,
        (Some(Timing::PeriodEnd), false) => return Err(ChangeRejected::TimingNotAllowed),
    };

    let mut q = Quote {
        from_plan_id: from_plan.id,
        to_plan_id: to_plan.id,
        from_seats: sub.seats,
        to_seats: req.to_seats,
        timing,
        proration_at: req.at,
        effective_at: req.at,
        currency: from_plan.currency.clone(),
        lines: Vec::new(),
        subtotal: 0,
        tax_rate_bps: sub.tax_rate_bps,
        tax: 0,
        total: 0,
        credit_added: 0,
        next_period_amount: new_amount,
    };
    if timing == Timing::PeriodEnd {
        q.effective_at = sub.current_period_end;
        return Ok(q);
    }

    let period = sub.current_period_end.as_second() - sub.current_period_start.as_second();
    let remaining = sub.current_period_end.as_second() - req.at.as_second();
    let (start, end) = (req.at, sub.current_period_end);
    let line =
        |kind, description: String, quantity: u32, unit_amount: i64, amount: i64| InvoiceLine {
            kind,
            description,
            quantity,
            unit_amount,
            amount,
            period_start: start,
            period_end: end,
        };

    if to_plan.id == from_plan.id {
        let delta = req.to_seats as i64 - sub.seats as i64;
        let amount = prorate(to_plan.seat_price * delta, remaining, period);
        let verb = if delta > 0 { "Added" } else { "Removed" };
        q.lines.push(line(
            InvoiceLineKind::Proration,
            format!(
                "{verb} {} {} seat(s), remaining time",
                delta.unsigned_abs(),
                to_plan.name
            ),
            delta.unsigned_abs() as u32,
            to_plan.seat_price * delta.signum(),
            amount,
        ));
    } else {
        q.lines.push(line(
            InvoiceLineKind::Proration,
            format!("Unused time on {} ({} seats)", from_plan.name, sub.seats),
            sub.seats,
            -from_plan.seat_price,
            -prorate(old_amount, remaining, period),
        ));
        q.lines.push(line(
            InvoiceLineKind::Proration,
            format!(
                "Remaining time on {} ({} seats)",
                to_plan.name, req.to_seats
            ),
            req.to_seats,
            to_plan.seat_price,
            prorate(new_amount, remaining, period),
        ));
    }

    let net: i64 = q.lines.iter().map(|l| l.amount).sum();
    if net > 0 {
        let applied = sub.credit_balance.min(net);
        if applied > 0 {
            q.lines.push(line(
                InvoiceLineKind::Credit,
                "Applied account credit".into(),
                1,
                -applied,
                -applied,
            ));
        }
        q.subtotal = net - applied;
        q.tax = tax(q.subtotal, sub.tax_rate_bps);
        q.total = q.subtotal + q.tax;
    } else {
        q.subtotal = net;
        q.credit_added = -net;
    }
    Ok(q)
}

/// The subscription after `quote` is applied (plan, seats or the scheduled
/// change, and the credit balance).
pub fn apply(sub: &Subscription, q: &Quote) -> Subscription {
    let mut next = sub.clone();
    match q.timing {
        Timing::Now => {
            next.plan_id = q.to_plan_id;
            next.seats = q.to_seats;
            next.pending_change = None;
            let applied: i64 = q
                .lines
                .iter()
                .filter(|l| l.kind == InvoiceLineKind::Credit)
                .map(|l| -l.amount)
                .sum();
            next.credit_balance = sub.credit_balance - applied + q.credit_added;
        }
        Timing::PeriodEnd => {
            next.pending_change = Some(crate::records::PendingChange {
                plan_id: q.to_plan_id,
                seats: q.to_seats,
                effective_at: q.effective_at,
            });
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::*;
    use crate::records::BillingInterval;
    use uuid::Uuid;

    const DAY: i64 = 86_400;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn plan(n: u128, name: &str, price: i64) -> Plan {
        Plan {
            id: PlanId(Uuid::from_u128(n)),
            code: name.to_lowercase(),
            name: name.into(),
            tier: n as u8,
            currency: "USD".into(),
            interval: BillingInterval::Month,
            seat_price: price,
            min_seats: 1,
            max_seats: 50,
            features: vec![],
            meters: vec![],
            version: 1,
            created_at: ts(0),
            updated_at: ts(0),
        }
    }

    fn sub(plan: &Plan, seats: u32) -> Subscription {
        Subscription {
            id: SubscriptionId(Uuid::from_u128(9)),
            account_id: AccountId(Uuid::from_u128(7)),
            plan_id: plan.id,
            status: SubscriptionStatus::Active,
            seats,
            current_period_start: ts(0),
            current_period_end: ts(30 * DAY),
            pending_change: None,
            tax_rate_bps: 0,
            credit_balance: 0,
            billing_email: "billing@acme.test".into(),
            version: 1,
            created_at: ts(0),
            updated_at: ts(0),
        }
    }

    fn req(to: &Plan, seats: u32, at: i64) -> ChangeRequest<'_> {
        ChangeRequest {
            to_plan: to,
            to_seats: seats,
            timing: None,
            at: ts(at),
        }
    }

    #[test]
    fn mid_period_upgrade_credits_old_and_charges_new() {
        // Team $20/seat, Business $40/seat, 10 seats, 20 of 30 days left:
        // credit 200 * 20/30 = 133.333 -> 133.33; charge 400 * 20/30 = 266.667 -> 266.67.
        let (team, business) = (plan(1, "Team", 2_000), plan(2, "Business", 4_000));
        let q = quote(&sub(&team, 10), &team, 4, req(&business, 10, 10 * DAY)).unwrap();
        assert_eq!(q.timing, Timing::Now);
        let amounts: Vec<i64> = q.lines.iter().map(|l| l.amount).collect();
        assert_eq!(amounts, vec![-13_333, 26_667]);
        assert_eq!(q.total, 13_334);
        assert_eq!(q.next_period_amount, 40_000);
    }

    #[test]
    fn downgrade_waits_for_period_end_and_costs_nothing_now() {
        let (team, business) = (plan(1, "Team", 2_000), plan(2, "Business", 4_000));
        let s = sub(&business, 10);
        let q = quote(&s, &business, 3, req(&team, 10, 12 * DAY)).unwrap();
        assert_eq!(q.timing, Timing::PeriodEnd);
        assert_eq!(q.effective_at, s.current_period_end);
        assert_eq!((q.total, q.lines.len()), (0, 0));
        let after = apply(&s, &q);
        assert_eq!(
            after.plan_id, business.id,
            "plan stays until the period ends"
        );
        assert_eq!(after.pending_change.unwrap().plan_id, team.id);
    }

    #[test]
    fn seat_add_and_remove_are_prorated_to_the_second() {
        let team = plan(1, "Team", 2_000);
        // 2 seats added with 15 of 30 days left: 2 * 20.00 / 2 = 20.00.
        let q = quote(&sub(&team, 10), &team, 5, req(&team, 12, 15 * DAY)).unwrap();
        assert_eq!(q.total, 2_000);
        // One second left in the period: 20.00 * 1 / 2_592_000 rounds to 0.00;
        // 50 seats added: 1000.00 * 1 / 2_592_000 = 0.0386 -> 0.00 too.
        let q = quote(&sub(&team, 10), &team, 5, req(&team, 11, 30 * DAY - 1)).unwrap();
        assert_eq!(q.total, 0);
        // 7 seats, one hour in: 140.00 * (30d - 1h)/30d = 139.805... -> 139.81.
        let q = quote(&sub(&team, 3), &team, 1, req(&team, 10, 3_600)).unwrap();
        assert_eq!(q.total, 13_981);
        // Removing 2 seats halfway credits 20.00 to the balance, nothing due.
        let s = sub(&team, 12);
        let q = quote(&s, &team, 5, req(&team, 10, 15 * DAY)).unwrap();
        assert_eq!((q.total, q.credit_added), (0, 2_000));
        assert_eq!(apply(&s, &q).credit_balance, 2_000);
    }

    #[test]
    fn credit_is_applied_before_tax() {
        let team = plan(1, "Team", 2_000);
        let mut s = sub(&team, 10);
        s.credit_balance = 500;
        s.tax_rate_bps = 2_000;
        let q = quote(&s, &team, 5, req(&team, 12, 15 * DAY)).unwrap();
        // 20.00 charge - 5.00 credit = 15.00, + 20 % tax = 18.00.
        assert_eq!((q.subtotal, q.tax, q.total), (1_500, 300, 1_800));
        assert_eq!(apply(&s, &q).credit_balance, 0);
    }

    #[test]
    fn limits_are_enforced() {
        let team = plan(1, "Team", 2_000);
        let s = sub(&team, 10);
        assert!(matches!(
            quote(&s, &team, 0, req(&team, 51, DAY)),
            Err(ChangeRejected::SeatsOutOfRange { .. })
        ));
        assert_eq!(
            quote(&s, &team, 8, req(&team, 7, DAY)),
            Err(ChangeRejected::BelowAssigned { assigned: 8 })
        );
        assert_eq!(
            quote(&s, &team, 1, req(&team, 10, DAY)),
            Err(ChangeRejected::NoChange)
        );
        assert_eq!(
            quote(&s, &team, 1, req(&team, 11, 31 * DAY)),
            Err(ChangeRejected::OutsidePeriod)
        );
        let mut r = req(&team, 11, DAY);
        r.timing = Some(Timing::PeriodEnd);
        assert_eq!(
            quote(&s, &team, 1, r),
            Err(ChangeRejected::TimingNotAllowed)
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(scale_rounded(1, 1, 2), 1);
        assert_eq!(scale_rounded(-1, 1, 2), -1);
        assert_eq!(scale_rounded(1, 1, 3), 0);
        assert_eq!(
            scale_rounded(i64::MAX, 2, 2),
            i64::MAX,
            "no overflow in the product"
        );
    }

    proptest::proptest! {
        /// Splitting the remaining period anywhere never creates or loses more
        /// than a cent per line: charge(a..end) + charge(start..a) ≈ full price.
        #[test]
        fn proration_adds_up(price in 0i64..1_000_000, cut in 0i64..(30 * DAY)) {
            let period = 30 * DAY;
            let sum = prorate(price, cut, period) + prorate(price, period - cut, period);
            proptest::prop_assert!((sum - price).abs() <= 1);
        }
    }
}
