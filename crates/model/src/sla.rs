//! SLA clocks over business hours.
//!
//! A support team promises to answer within so many hours *of business
//! time*: a four-hour first-response target on a ticket that arrives at
//! 15:00 on a Friday is due at 11:00 on Monday, not at 19:00 on Friday. This
//! module turns a team's [`BusinessHours`] and [`SlaTargets`] into due
//! instants and keeps them on the conversation as an [`SlaClock`], so the
//! desktop can show "due in 2 h" and flag breaches while offline.
//!
//! Everything here is pure: the current instant is always an argument, never
//! read from the system clock, so the server, the desktop and the tests get
//! the same dues for the same inputs.
//!
//! Two definitions carry the whole module:
//!
//! * [`Schedule::between`]`(a, b)` is the business time in `[a, b)`.
//! * [`Schedule::add`]`(start, secs)` is the *earliest* instant `t` with
//!   `between(start, t) == secs`. A target that runs out exactly at closing
//!   time is therefore due at closing time (Friday 17:00), not at the next
//!   opening: by then the customer has waited the full target.
//!
//! Both walk the calendar interval by interval in the team's time zone and
//! count whole weeks arithmetically when they can, so a target of months
//! costs a handful of steps, not one step per minute or per day.

use std::cmp::{max, min};

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Span, Timestamp};
use serde::{Deserialize, Serialize};

use crate::validate::Invalid;

const NANOS_PER_SEC: i128 = 1_000_000_000;
const DAY_NANOS: i128 = 86_400 * NANOS_PER_SEC;
/// More weeks than the whole supported calendar (years -9999 to 9999) holds,
/// so a capped skip still overshoots the range and reports it.
const MAX_WEEKS: i128 = 1_100_000;
const EMPTY_HOURS: &str = "business hours are empty: add at least one interval, \
     or use BusinessHours::always() for 24/7 cover";

/// Why a due instant could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlaError {
    /// No interval in the week, so business time never elapses and no
    /// target can ever fall due. Reported instead of looping forever.
    #[error("business hours are empty: no business time ever elapses, so nothing can fall due")]
    EmptyHours,
    /// The business hours or targets break a rule; the [`Invalid`] says which
    /// field and why.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The due instant would fall outside the dates jiff can represent
    /// (years -9999 to 9999), e.g. for an absurdly large target.
    #[error("the due instant falls outside the supported range of dates (years -9999 to 9999)")]
    OutOfRange,
}

/// One opening interval on one weekday, in the team's local (wall-clock)
/// time.
///
/// `end` must be after `start`, except that an `end` of `00:00` means
/// midnight at the end of the day (24:00): that is how an interval reaches
/// the end of the day, since [`Time`] has no 24:00. Intervals never run
/// overnight: a night shift from 22:00 to 06:00 is two intervals, Monday
/// `22:00–00:00` and Tuesday `00:00–06:00`, which meet seamlessly at
/// midnight. Keeping each interval inside one day keeps holidays
/// unambiguous (a holiday removes exactly that date's intervals).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayHours {
    /// Serialized as a lowercase English name, `"monday"` to `"sunday"`.
    #[serde(with = "weekday_name")]
    #[cfg_attr(
        feature = "ts",
        ts(
            type = r#""monday" | "tuesday" | "wednesday" | "thursday" | "friday" | "saturday" | "sunday""#
        )
    )]
    pub weekday: Weekday,
    pub start: Time,
    /// Exclusive; `00:00` means the end of the day (24:00).
    pub end: Time,
}

impl DayHours {
    pub fn new(weekday: Weekday, start: Time, end: Time) -> DayHours {
        DayHours {
            weekday,
            start,
            end,
        }
    }

    /// The interval as nanoseconds since local midnight, `end` of 00:00
    /// read as 24:00.
    fn bounds(&self) -> (i128, i128) {
        let since_midnight = |t: Time| Time::midnight().duration_until(t).as_nanos();
        let end = if self.end == Time::midnight() {
            DAY_NANOS
        } else {
            since_midnight(self.end)
        };
        (since_midnight(self.start), end)
    }
}

/// When a team works: weekly opening intervals in one IANA time zone, minus
/// holidays.
///
/// Several intervals per weekday are allowed (split shifts, a lunch break).
/// Holidays are dates in the team's time zone and close the whole day.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessHours {
    /// IANA time zone name, e.g. `Europe/Berlin`. The weekly intervals and
    /// holidays are read in this zone, so daylight-saving changes move the
    /// opening hours in UTC the way they move them on the office wall.
    pub time_zone: String,
    pub weekly: Vec<DayHours>,
    #[serde(default)]
    pub holidays: Vec<Date>,
}

impl BusinessHours {
    /// Round-the-clock cover in UTC: business time is plain elapsed time,
    /// for teams (or plans) whose SLA runs 24/7.
    pub fn always() -> BusinessHours {
        BusinessHours {
            time_zone: "UTC".to_string(),
            weekly: all_weekdays()
                .map(|w| DayHours::new(w, Time::midnight(), Time::midnight()))
                .to_vec(),
            holidays: Vec::new(),
        }
    }

    /// Monday to Friday from `start` to `end` in `time_zone`: the usual office
    /// week, so callers need not spell out five identical intervals.
    pub fn weekdays(time_zone: &str, start: Time, end: Time) -> BusinessHours {
        BusinessHours {
            time_zone: time_zone.to_string(),
            weekly: all_weekdays()[..5]
                .iter()
                .map(|&w| DayHours::new(w, start, end))
                .collect(),
            holidays: Vec::new(),
        }
    }

    /// Checks the rules the SLA engine relies on; each error names the bad
    /// part (`business_hours.weekly[2]`) so a settings form can point at it.
    ///
    /// Empty hours are rejected here: with no business time, no target could
    /// ever fall due, which is a configuration mistake, not a policy.
    pub fn validate(&self) -> Result<(), Invalid> {
        if TimeZone::get(&self.time_zone).is_err() {
            return Err(Invalid::new(
                "business_hours.time_zone",
                format!(
                    "unknown time zone {:?}: use an IANA name such as Europe/Berlin",
                    self.time_zone
                ),
            ));
        }
        if self.weekly.is_empty() {
            return Err(Invalid::new("business_hours.weekly", EMPTY_HOURS));
        }
        for (i, h) in self.weekly.iter().enumerate() {
            let (start, end) = h.bounds();
            if end <= start {
                return Err(Invalid::new(
                    format!("business_hours.weekly[{i}]"),
                    format!(
                        "end {} must be after start {} (a night shift is two intervals: \
                         until 00:00, then from 00:00 on the next day)",
                        hhmm(h.end),
                        hhmm(h.start)
                    ),
                ));
            }
        }
        // Sorted by weekday and start, any overlap shows up between
        // neighbours: if x overlaps a later y, it also overlaps whatever
        // sorts right after x.
        let mut order: Vec<usize> = (0..self.weekly.len()).collect();
        order.sort_by_key(|&i| (day_index(self.weekly[i].weekday), self.weekly[i].bounds()));
        for pair in order.windows(2) {
            let (a, b) = (&self.weekly[pair[0]], &self.weekly[pair[1]]);
            if a.weekday == b.weekday && b.bounds().0 < a.bounds().1 {
                let (first, second) = (min(pair[0], pair[1]), max(pair[0], pair[1]));
                let show = |h: &DayHours| format!("{}–{}", hhmm(h.start), hhmm(h.end));
                return Err(Invalid::new(
                    format!("business_hours.weekly[{second}]"),
                    format!(
                        "{} on {} overlaps weekly[{first}] ({})",
                        show(&self.weekly[second]),
                        day_name(b.weekday),
                        show(&self.weekly[first])
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Validates and compiles the hours for repeated use: resolves the time
    /// zone once and sorts the intervals and holidays. Use this when
    /// computing many dues with the same hours (a queue listing).
    pub fn schedule(&self) -> Result<Schedule, SlaError> {
        if self.weekly.is_empty() {
            return Err(SlaError::EmptyHours);
        }
        self.validate()?;
        let tz = TimeZone::get(&self.time_zone)
            .map_err(|_| Invalid::new("business_hours.time_zone", "unknown time zone"))?;
        let mut days: [Vec<(i128, i128)>; 7] = Default::default();
        for h in &self.weekly {
            days[day_index(h.weekday)].push(h.bounds());
        }
        let mut day_nanos = [0i128; 7];
        for (day, total) in days.iter_mut().zip(day_nanos.iter_mut()) {
            day.sort_unstable();
            *total = day.iter().map(|(s, e)| e - s).sum();
        }
        let mut holidays = self.holidays.clone();
        holidays.sort_unstable();
        holidays.dedup();
        Ok(Schedule {
            tz,
            days,
            day_nanos,
            week_nanos: day_nanos.iter().sum(),
            holidays,
        })
    }

    /// The instant when `secs` of business time have elapsed after `start`;
    /// see [`Schedule::add`].
    pub fn add(&self, start: Timestamp, secs: i64) -> Result<Timestamp, SlaError> {
        self.schedule()?.add(start, secs)
    }

    /// Business seconds in `[a, b)`; see [`Schedule::between`]. Fallible
    /// only because the hours themselves may be invalid.
    pub fn between(&self, a: Timestamp, b: Timestamp) -> Result<i64, SlaError> {
        Ok(self.schedule()?.between(a, b))
    }
}

/// Validated [`BusinessHours`] ready for arithmetic. Build with
/// [`BusinessHours::schedule`].
///
/// Local times are turned into instants interval by interval in the team's
/// zone, so daylight-saving changes are handled by the time-zone database:
/// an interval that spans the spring-forward hour is an hour shorter in real
/// time, one spanning the fall-back hour an hour longer. A wall-clock time
/// that does not exist (inside the spring-forward gap) is taken as the
/// instant of the change; one that occurs twice (inside the fall-back fold)
/// as its first occurrence. Both choices keep instants in calendar order, so
/// intervals never overlap or run backwards.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: TimeZone,
    /// Per weekday (Monday first): sorted, non-overlapping intervals in
    /// nanoseconds since local midnight.
    days: [Vec<(i128, i128)>; 7],
    /// Business time per weekday in wall-clock terms (exact whenever the UTC
    /// offset is constant over the day).
    day_nanos: [i128; 7],
    week_nanos: i128,
    /// Sorted, deduplicated.
    holidays: Vec<Date>,
}

impl Schedule {
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The earliest instant at which `secs` seconds of business time have
    /// elapsed since `start`. If `start` is outside business hours, counting
    /// begins at the next opening. `secs <= 0` returns `start`: nothing is
    /// left to wait for.
    ///
    /// Always terminates: a schedule has at least one interval a week, and
    /// long spans are counted a week at a time. Fails only with
    /// [`SlaError::OutOfRange`] when the answer lies beyond the year 9999.
    pub fn add(&self, start: Timestamp, secs: i64) -> Result<Timestamp, SlaError> {
        if secs <= 0 {
            return Ok(start);
        }
        Ok(self
            .walk_add(start, i128::from(secs) * NANOS_PER_SEC, true)?
            .0)
    }

    /// Business seconds in `[a, b)`, rounded down to whole seconds; 0 when
    /// `b <= a`.
    pub fn between(&self, a: Timestamp, b: Timestamp) -> i64 {
        let nanos = self.walk_between(a, b, true).0;
        i64::try_from(nanos / NANOS_PER_SEC).unwrap_or(i64::MAX)
    }

    /// [`Schedule::add`] on nanoseconds. Also returns how many days were
    /// walked one by one, so tests can check that long spans are skipped
    /// rather than stepped; `skip = false` is the plain day-by-day walk the
    /// tests compare against.
    fn walk_add(
        &self,
        start: Timestamp,
        mut remaining: i128,
        skip: bool,
    ) -> Result<(Timestamp, u32), SlaError> {
        let start_n = start.as_nanosecond();
        // A target the rest of the calendar cannot hold is out of range; say
        // so at once instead of walking millennia of weeks to find out. The
        // bound is generous on purpose (every week touched, each a day longer
        // than its wall-clock hours to allow for offset changes), so it never
        // rejects a due that exists.
        let weeks_left = (Timestamp::MAX.as_nanosecond() - start_n) / (7 * DAY_NANOS) + 2;
        if remaining > weeks_left * (self.week_nanos + DAY_NANOS) {
            return Err(SlaError::OutOfRange);
        }
        let mut day = self.first_day(start);
        let mut steps = 0;
        loop {
            if skip
                && remaining > self.week_nanos
                && let Some(midnight) = self.instant(day, 0)
                && midnight >= start_n
            {
                // Strictly fewer whole weeks than the target, so the due
                // instant is still ahead after the skip.
                let weeks = ((remaining - 1) / self.week_nanos).min(self.stable_weeks(day));
                if weeks > 0 {
                    let to = add_days(day, weeks * 7).ok_or(SlaError::OutOfRange)?;
                    remaining -= weeks * self.week_nanos - self.holiday_nanos(day, to);
                    day = to;
                    continue;
                }
            }
            steps += 1;
            if !self.is_holiday(day) {
                for &(s, e) in &self.days[day_index(day.weekday())] {
                    let open = self.instant(day, s).ok_or(SlaError::OutOfRange)?;
                    let close = self.instant(day, e).ok_or(SlaError::OutOfRange)?;
                    let from = max(open, start_n);
                    if close <= from {
                        continue;
                    }
                    if remaining <= close - from {
                        let due = Timestamp::from_nanosecond(from + remaining)
                            .map_err(|_| SlaError::OutOfRange)?;
                        return Ok((due, steps));
                    }
                    remaining -= close - from;
                }
            }
            day = day.tomorrow().map_err(|_| SlaError::OutOfRange)?;
        }
    }

    /// [`Schedule::between`] on nanoseconds, with the step count as in
    /// [`Schedule::walk_add`].
    fn walk_between(&self, a: Timestamp, b: Timestamp, skip: bool) -> (i128, u32) {
        if b <= a {
            return (0, 0);
        }
        let (a_n, b_n) = (a.as_nanosecond(), b.as_nanosecond());
        let last = self.tz.to_datetime(b).date();
        let mut day = self.first_day(a);
        let mut total = 0;
        let mut steps = 0;
        while let Some(midnight) = self.instant(day, 0) {
            if midnight >= b_n {
                break;
            }
            if skip && midnight >= a_n {
                // Only weeks that end a full day before `b`'s date lie wholly
                // inside [a, b).
                let whole_days = days_between(day, last) - 1;
                let weeks = (whole_days / 7).min(self.stable_weeks(day));
                if weeks > 0
                    && let Some(to) = add_days(day, weeks * 7)
                {
                    total += weeks * self.week_nanos - self.holiday_nanos(day, to);
                    day = to;
                    continue;
                }
            }
            steps += 1;
            if !self.is_holiday(day) {
                for &(s, e) in &self.days[day_index(day.weekday())] {
                    let (Some(open), Some(close)) = (self.instant(day, s), self.instant(day, e))
                    else {
                        return (total, steps);
                    };
                    if open >= b_n {
                        break;
                    }
                    let (from, to) = (max(open, a_n), min(close, b_n));
                    if to > from {
                        total += to - from;
                    }
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        (total, steps)
    }

    /// The first local date whose intervals may reach past `t`. One day early
    /// on purpose: around a fold at midnight the wall-clock date of `t` can be
    /// a day ahead of the interval that contains it, and an extra day with
    /// nothing after `t` costs only one step.
    fn first_day(&self, t: Timestamp) -> Date {
        let date = self.tz.to_datetime(t).date();
        date.yesterday().unwrap_or(date)
    }

    /// The instant (in nanoseconds) of `offset` nanoseconds after local
    /// midnight on `day`; an offset of a full day is the next midnight. A
    /// wall-clock time in a DST gap maps to the instant of the change, one
    /// in a fold to its first occurrence, so instants never run backwards.
    fn instant(&self, day: Date, offset: i128) -> Option<i128> {
        let dt: DateTime = if offset >= DAY_NANOS {
            day.tomorrow().ok()?.to_datetime(Time::midnight())
        } else {
            let since_midnight = SignedDuration::from_nanos(i64::try_from(offset).ok()?);
            day.to_datetime(Time::midnight())
                .checked_add(since_midnight)
                .ok()?
        };
        let ambiguous = self.tz.to_ambiguous_timestamp(dt);
        let ts = match ambiguous.offset() {
            AmbiguousOffset::Gap { .. } => {
                // `earlier` lands just before the change; the change itself
                // is the next transition.
                let before = ambiguous.earlier().ok()?;
                self.tz.following(before).next()?.timestamp()
            }
            AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
                ambiguous.earlier().ok()?
            }
        };
        Some(ts.as_nanosecond())
    }

    /// How many whole weeks from local midnight of `day` keep one UTC offset
    /// throughout. Inside such weeks wall-clock durations are real durations,
    /// so their business time is `weeks * week - holidays`, no walking
    /// needed. Looks from a day before `day` so a change at midnight itself
    /// is seen, and stops two days short of the next change so its day is
    /// walked interval by interval.
    fn stable_weeks(&self, day: Date) -> i128 {
        let Some(probe) = self
            .instant(day, 0)
            .and_then(|n| Timestamp::from_nanosecond(n - DAY_NANOS).ok())
        else {
            return 0;
        };
        match self.tz.following(probe).next() {
            None => MAX_WEEKS,
            Some(change) => {
                let change_day = self.tz.to_datetime(change.timestamp()).date();
                ((days_between(day, change_day) - 2).max(0) / 7).min(MAX_WEEKS)
            }
        }
    }

    fn is_holiday(&self, day: Date) -> bool {
        self.holidays.binary_search(&day).is_ok()
    }

    /// Wall-clock business time that holidays in `[from, to)` remove.
    fn holiday_nanos(&self, from: Date, to: Date) -> i128 {
        let lo = self.holidays.partition_point(|h| *h < from);
        let hi = self.holidays.partition_point(|h| *h < to);
        self.holidays[lo..hi]
            .iter()
            .map(|h| self.day_nanos[day_index(h.weekday())])
            .sum()
    }
}

/// The response and resolution promises of a plan or team, in seconds of
/// business time. `None` means no promise for that metric.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SlaTargets {
    /// From the conversation's creation to the first agent reply.
    pub first_response_secs: Option<i64>,
    /// From a customer reply to the next agent reply (after the first).
    pub next_response_secs: Option<i64>,
    /// From creation to resolution.
    pub resolution_secs: Option<i64>,
    /// How long before a due instant to warn, in real (wall-clock) seconds:
    /// the warning is a nudge to whoever is on shift now. 0 turns warnings
    /// off.
    pub warn_before_secs: i64,
}

impl SlaTargets {
    pub fn validate(&self) -> Result<(), Invalid> {
        for metric in SlaMetric::ALL {
            if let Some(secs) = self.target(metric)
                && secs <= 0
            {
                return Err(Invalid::new(
                    format!("sla_targets.{}_secs", metric.as_str()),
                    "must be a positive number of seconds (leave it empty for no target)",
                ));
            }
        }
        if self.warn_before_secs < 0 {
            return Err(Invalid::new(
                "sla_targets.warn_before_secs",
                "must not be negative (0 turns warnings off)",
            ));
        }
        Ok(())
    }

    pub fn target(&self, metric: SlaMetric) -> Option<i64> {
        match metric {
            SlaMetric::FirstResponse => self.first_response_secs,
            SlaMetric::NextResponse => self.next_response_secs,
            SlaMetric::Resolution => self.resolution_secs,
        }
    }
}

/// What an SLA promises.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaMetric {
    FirstResponse,
    NextResponse,
    Resolution,
}

impl SlaMetric {
    pub const ALL: [SlaMetric; 3] = [
        SlaMetric::FirstResponse,
        SlaMetric::NextResponse,
        SlaMetric::Resolution,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SlaMetric::FirstResponse => "first_response",
            SlaMetric::NextResponse => "next_response",
            SlaMetric::Resolution => "resolution",
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaEventKind {
    /// The due instant is within `warn_before_secs`.
    Warning,
    /// The due instant has passed without the promise being kept.
    Breach,
}

/// Something to notify about, found by [`SlaClock::check`].
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaEvent {
    pub metric: SlaMetric,
    pub kind: SlaEventKind,
    /// The due instant the event is about; [`SlaClock::record`] only marks
    /// events whose due is still current.
    pub due: Timestamp,
}

/// The SLA state of one conversation, stored with it so any client can show
/// the dues and flag breaches without recomputing business hours.
///
/// Due instants are absolute; while the clock is paused they are stale and
/// [`SlaClock::resume`] moves them. `warned` and `breached` record which
/// events have fired for the *current* due instants, so each fires once:
/// the next-response metric is re-armed each time an agent answers, and a
/// due moved by a pause gets a fresh warning.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClock {
    pub started_at: Timestamp,
    pub first_response_due: Option<Timestamp>,
    pub next_response_due: Option<Timestamp>,
    pub resolution_due: Option<Timestamp>,
    pub first_responded_at: Option<Timestamp>,
    /// Set while the conversation is resolved; a customer reply reopens it.
    pub resolved_at: Option<Timestamp>,
    /// Set while waiting on the customer (status pending): the clock stops.
    pub paused_since: Option<Timestamp>,
    #[serde(default)]
    pub warned: Vec<SlaMetric>,
    #[serde(default)]
    pub breached: Vec<SlaMetric>,
}

impl SlaClock {
    /// A conversation was created at `at`: the first response and the
    /// resolution fall due after their targets in business time.
    pub fn start(
        targets: &SlaTargets,
        hours: &BusinessHours,
        at: Timestamp,
    ) -> Result<SlaClock, SlaError> {
        targets.validate()?;
        let schedule = hours.schedule()?;
        let due = |secs: Option<i64>| secs.map(|s| schedule.add(at, s)).transpose();
        Ok(SlaClock {
            started_at: at,
            first_response_due: due(targets.first_response_secs)?,
            next_response_due: None,
            resolution_due: due(targets.resolution_secs)?,
            first_responded_at: None,
            resolved_at: None,
            paused_since: None,
            warned: Vec::new(),
            breached: Vec::new(),
        })
    }

    /// The current due instant of `metric`, if one is pending.
    pub fn due(&self, metric: SlaMetric) -> Option<Timestamp> {
        match metric {
            SlaMetric::FirstResponse => self.first_response_due,
            SlaMetric::NextResponse => self.next_response_due,
            SlaMetric::Resolution => self.resolution_due,
        }
    }

    fn due_mut(&mut self, metric: SlaMetric) -> &mut Option<Timestamp> {
        match metric {
            SlaMetric::FirstResponse => &mut self.first_response_due,
            SlaMetric::NextResponse => &mut self.next_response_due,
            SlaMetric::Resolution => &mut self.resolution_due,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// An agent replied publicly. The first reply satisfies the first
    /// response; any reply answers the pending next response, which re-arms
    /// that metric for the customer's next message.
    pub fn agent_replied(&mut self, at: Timestamp) {
        if self.first_responded_at.is_none() {
            self.first_responded_at = Some(at);
            self.settle(SlaMetric::FirstResponse, at);
        }
        self.rearm_next_response();
    }

    /// The customer wrote at `at`. Waiting on the customer ends (the clock
    /// resumes) and a resolved conversation reopens. If the customer is not
    /// still waiting for a first reply and no next response is pending, the
    /// next response falls due after its target: measured from the oldest
    /// unanswered message, so a second message does not push the due later.
    pub fn customer_replied(
        &mut self,
        targets: &SlaTargets,
        hours: &BusinessHours,
        at: Timestamp,
    ) -> Result<(), SlaError> {
        targets.validate()?;
        let schedule = hours.schedule()?;
        let next_due = match targets.next_response_secs {
            Some(secs) if self.next_response_due.is_none() => Some(schedule.add(at, secs)?),
            _ => None,
        };
        self.resume_with(&schedule, at)?;
        let reopened = self.resolved_at.take().is_some();
        let awaiting_first = self.first_responded_at.is_none() && !reopened;
        if !awaiting_first && next_due.is_some() {
            self.next_response_due = next_due;
        }
        Ok(())
    }

    /// Waiting on the customer from `at` (status pending): the clock stops,
    /// and nothing fires until [`SlaClock::resume`]. Pausing twice keeps the
    /// first pause.
    pub fn pause(&mut self, at: Timestamp) {
        if self.paused_since.is_none() {
            self.paused_since = Some(at);
        }
    }

    /// The wait on the customer is over at `at`. Every due still ahead when
    /// the pause began moves later by the business time that elapsed while
    /// paused, so the agent has exactly the business time that was left:
    /// a paused clock never breaches. A due already passed when the pause
    /// began stays put, since pausing must not undo a breach.
    pub fn resume(&mut self, hours: &BusinessHours, at: Timestamp) -> Result<(), SlaError> {
        let schedule = hours.schedule()?;
        self.resume_with(&schedule, at)
    }

    fn resume_with(&mut self, schedule: &Schedule, at: Timestamp) -> Result<(), SlaError> {
        let Some(paused) = self.paused_since else {
            return Ok(());
        };
        let elapsed = schedule.between(paused, at);
        // Compute every new due before changing anything, so an error leaves
        // the clock as it was.
        let mut moved = Vec::new();
        for metric in SlaMetric::ALL {
            if let Some(due) = self.due(metric)
                && due > paused
            {
                moved.push((metric, schedule.add(due, elapsed)?));
            }
        }
        self.paused_since = None;
        for (metric, due) in moved {
            if self.due(metric) != Some(due) {
                self.warned.retain(|m| *m != metric);
            }
            *self.due_mut(metric) = Some(due);
        }
        Ok(())
    }

    /// The conversation was resolved at `at`: every due is cleared and the
    /// resolution is satisfied (or marked breached if late). A first
    /// response still pending is settled the same way.
    pub fn resolved(&mut self, at: Timestamp) {
        self.settle(SlaMetric::FirstResponse, at);
        self.settle(SlaMetric::Resolution, at);
        self.rearm_next_response();
        self.paused_since = None;
        self.resolved_at = Some(at);
    }

    /// Clears the due of a metric that was just satisfied. A late
    /// satisfaction is marked breached even if no check ran in between, so a
    /// report never shows a missed target as met.
    fn settle(&mut self, metric: SlaMetric, at: Timestamp) {
        let Some(due) = self.due_mut(metric).take() else {
            return;
        };
        // While paused the remaining time is frozen, so only a due already
        // passed when the pause began was missed.
        let late = due <= self.paused_since.unwrap_or(at);
        if late && !self.breached.contains(&metric) {
            self.breached.push(metric);
        }
    }

    fn rearm_next_response(&mut self) {
        self.next_response_due = None;
        self.warned.retain(|m| *m != SlaMetric::NextResponse);
        self.breached.retain(|m| *m != SlaMetric::NextResponse);
    }

    /// The events that are new at `at`: a warning when
    /// `due - warn_before <= at < due` and not yet warned, a breach when
    /// `at >= due` and not yet breached. Nothing fires while paused. Pure:
    /// call [`SlaClock::record`] with the events once they are delivered.
    pub fn check(&self, targets: &SlaTargets, at: Timestamp) -> Vec<SlaEvent> {
        if self.is_paused() {
            return Vec::new();
        }
        let at_n = at.as_nanosecond();
        let warn_n = i128::from(targets.warn_before_secs.max(0)) * NANOS_PER_SEC;
        let mut events = Vec::new();
        for metric in SlaMetric::ALL {
            let Some(due) = self.due(metric) else {
                continue;
            };
            let due_n = due.as_nanosecond();
            let kind = if at_n >= due_n {
                (!self.breached.contains(&metric)).then_some(SlaEventKind::Breach)
            } else if warn_n > 0 && at_n >= due_n - warn_n {
                (!self.warned.contains(&metric)).then_some(SlaEventKind::Warning)
            } else {
                None
            };
            if let Some(kind) = kind {
                events.push(SlaEvent { metric, kind, due });
            }
        }
        events
    }

    /// Marks events as fired so [`SlaClock::check`] does not return them
    /// again. Events about a due that is no longer current (answered or
    /// moved since the check) are ignored, so they cannot silence the next
    /// cycle.
    pub fn record(&mut self, events: &[SlaEvent]) {
        for event in events {
            if self.due(event.metric) != Some(event.due) {
                continue;
            }
            let list = match event.kind {
                SlaEventKind::Warning => &mut self.warned,
                SlaEventKind::Breach => &mut self.breached,
            };
            if !list.contains(&event.metric) {
                list.push(event.metric);
            }
        }
    }
}

fn all_weekdays() -> [Weekday; 7] {
    [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ]
}

fn day_index(w: Weekday) -> usize {
    usize::try_from(w.to_monday_zero_offset()).unwrap_or(0)
}

fn day_name(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "monday",
        Weekday::Tuesday => "tuesday",
        Weekday::Wednesday => "wednesday",
        Weekday::Thursday => "thursday",
        Weekday::Friday => "friday",
        Weekday::Saturday => "saturday",
        Weekday::Sunday => "sunday",
    }
}

/// `09:00` for whole minutes (how people write opening hours), the full
/// time otherwise so the message still shows the real value.
fn hhmm(t: Time) -> String {
    if t.second() == 0 && t.subsec_nanosecond() == 0 {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        t.to_string()
    }
}

fn add_days(day: Date, days: i128) -> Option<Date> {
    let span = Span::new().try_days(i64::try_from(days).ok()?).ok()?;
    day.checked_add(span).ok()
}

fn days_between(from: Date, to: Date) -> i128 {
    i128::from(from.duration_until(to).as_secs() / 86_400)
}

/// Serde for [`Weekday`], which jiff does not serialize: lowercase English
/// names, matching the snake_case of the rest of the wire format.
mod weekday_name {
    use jiff::civil::Weekday;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(w: &Weekday, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::day_name(*w))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Weekday, D::Error> {
        let name = String::deserialize(d)?;
        super::all_weekdays()
            .into_iter()
            .find(|w| super::day_name(*w) == name)
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "unknown weekday {name:?}: expected monday, tuesday, ... sunday"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};
    use proptest::prelude::*;

    const HOUR: i64 = 3600;

    /// The instant a wall clock in `tz` shows `civil` (e.g. `2026-06-05T15:00`).
    fn at(tz: &str, civil: &str) -> Timestamp {
        civil
            .parse::<DateTime>()
            .unwrap()
            .in_tz(tz)
            .unwrap()
            .timestamp()
    }

    fn berlin(civil: &str) -> Timestamp {
        at("Europe/Berlin", civil)
    }

    fn office(tz: &str) -> BusinessHours {
        BusinessHours::weekdays(tz, time(9, 0, 0, 0), time(17, 0, 0, 0))
    }

    fn every_day(tz: &str, start: Time, end: Time) -> BusinessHours {
        BusinessHours {
            time_zone: tz.to_string(),
            weekly: all_weekdays()
                .map(|w| DayHours::new(w, start, end))
                .to_vec(),
            holidays: Vec::new(),
        }
    }

    fn around_the_clock(tz: &str) -> BusinessHours {
        every_day(tz, Time::midnight(), Time::midnight())
    }

    fn christmas_office() -> BusinessHours {
        BusinessHours {
            holidays: vec![date(2026, 12, 25), date(2026, 12, 28)],
            ..office("Europe/Berlin")
        }
    }

    /// Mon–Fri 08:00–12:00 and 13:00–17:00: a lunch break.
    fn split_shift() -> BusinessHours {
        let mut hours =
            BusinessHours::weekdays("Europe/Berlin", time(8, 0, 0, 0), time(12, 0, 0, 0));
        hours.weekly.extend(
            BusinessHours::weekdays("Europe/Berlin", time(13, 0, 0, 0), time(17, 0, 0, 0)).weekly,
        );
        hours
    }

    /// A night desk, 22:00–06:00 every night, written as two intervals per
    /// night as the docs require.
    fn night_shift() -> BusinessHours {
        let mut hours = every_day("Europe/Berlin", time(22, 0, 0, 0), Time::midnight());
        hours
            .weekly
            .extend(every_day("Europe/Berlin", Time::midnight(), time(6, 0, 0, 0)).weekly);
        hours
    }

    fn schedule(hours: &BusinessHours) -> Schedule {
        hours.schedule().expect("test hours are valid")
    }

    #[test]
    fn add_table() {
        struct Case {
            why: &'static str,
            hours: BusinessHours,
            start: Timestamp,
            secs: i64,
            due: Timestamp,
        }
        let berlin_office = office("Europe/Berlin");
        let cases = [
            Case {
                why: "Friday 15:00 + 4 h: two hours on Friday, two from Monday's opening",
                hours: berlin_office.clone(),
                start: berlin("2026-06-05T15:00"),
                secs: 4 * HOUR,
                due: berlin("2026-06-08T11:00"),
            },
            Case {
                why: "started on Saturday: counting begins at Monday 09:00",
                hours: berlin_office.clone(),
                start: berlin("2026-06-06T10:00"),
                secs: 4 * HOUR,
                due: berlin("2026-06-08T13:00"),
            },
            Case {
                why: "before opening: counting begins at 09:00 the same day",
                hours: berlin_office.clone(),
                start: berlin("2026-06-08T07:00"),
                secs: HOUR,
                due: berlin("2026-06-08T10:00"),
            },
            Case {
                why: "a target that runs out at closing is due at closing, not next opening",
                hours: berlin_office.clone(),
                start: berlin("2026-06-05T13:00"),
                secs: 4 * HOUR,
                due: berlin("2026-06-05T17:00"),
            },
            Case {
                why: "sub-second starts keep their fraction: business time is exact",
                hours: berlin_office.clone(),
                start: berlin("2026-06-05T16:59:59.5"),
                secs: 1,
                due: berlin("2026-06-08T09:00:00.5"),
            },
            Case {
                why: "Christmas Friday and the Monday after are holidays: Thursday's 2 h, then Tuesday",
                hours: christmas_office(),
                start: berlin("2026-12-24T15:00"),
                secs: 4 * HOUR,
                due: berlin("2026-12-29T11:00"),
            },
            Case {
                why: "Berlin springs forward on Sunday 2026-03-29: Monday 11:00 is CEST (09:00 UTC)",
                hours: berlin_office.clone(),
                start: berlin("2026-03-27T15:00"),
                secs: 4 * HOUR,
                due: "2026-03-30T09:00:00Z".parse().unwrap(),
            },
            Case {
                why: "New York falls back on Sunday 2026-11-01: Monday 11:00 is EST (16:00 UTC)",
                hours: office("America/New_York"),
                start: at("America/New_York", "2026-10-30T15:00"),
                secs: 4 * HOUR,
                due: "2026-11-02T16:00:00Z".parse().unwrap(),
            },
            Case {
                why: "24/7 in Berlin across spring forward: 24 real hours, the wall clock shows 13:00",
                hours: around_the_clock("Europe/Berlin"),
                start: berlin("2026-03-28T12:00"),
                secs: 24 * HOUR,
                due: berlin("2026-03-29T13:00"),
            },
            Case {
                why: "24/7 in New York across fall back: 24 real hours, the wall clock shows 11:00",
                hours: around_the_clock("America/New_York"),
                start: at("America/New_York", "2026-10-31T12:00"),
                secs: 24 * HOUR,
                due: at("America/New_York", "2026-11-01T11:00"),
            },
            Case {
                why: "Tokyo team: 06:00Z Friday is 15:00 JST, so 2 h Friday and 2 h Monday",
                hours: office("Asia/Tokyo"),
                start: "2026-06-05T06:00:00Z".parse().unwrap(),
                secs: 4 * HOUR,
                due: at("Asia/Tokyo", "2026-06-08T11:00"),
            },
            Case {
                why: "New York team: the same 06:00Z is 02:00 EDT, so due at 13:00 the same Friday",
                hours: office("America/New_York"),
                start: "2026-06-05T06:00:00Z".parse().unwrap(),
                secs: 4 * HOUR,
                due: at("America/New_York", "2026-06-05T13:00"),
            },
            Case {
                why: "split shift: one hour before lunch, one after it",
                hours: split_shift(),
                start: berlin("2026-06-08T11:00"),
                secs: 2 * HOUR,
                due: berlin("2026-06-08T14:00"),
            },
            Case {
                why: "split shift: started during lunch, counting begins at 13:00",
                hours: split_shift(),
                start: berlin("2026-06-08T12:30"),
                secs: HOUR,
                due: berlin("2026-06-08T14:00"),
            },
            Case {
                why: "night shift: the two intervals meet at midnight without a gap",
                hours: night_shift(),
                start: berlin("2026-06-08T23:00"),
                secs: 3 * HOUR,
                due: berlin("2026-06-09T02:00"),
            },
            Case {
                why: "30 business days from a Monday opening end on the sixth Friday at closing",
                hours: berlin_office.clone(),
                start: berlin("2026-01-05T09:00"),
                secs: 30 * 8 * HOUR,
                due: berlin("2026-02-13T17:00"),
            },
            Case {
                why: "always() is plain elapsed time",
                hours: BusinessHours::always(),
                start: "2026-06-05T15:00:00Z".parse().unwrap(),
                secs: 4 * HOUR,
                due: "2026-06-05T19:00:00Z".parse().unwrap(),
            },
            Case {
                why: "zero seconds: nothing left to wait for, due at the start even off hours",
                hours: berlin_office.clone(),
                start: berlin("2026-06-06T10:00"),
                secs: 0,
                due: berlin("2026-06-06T10:00"),
            },
        ];
        for case in cases {
            let due = case.hours.add(case.start, case.secs).unwrap();
            assert_eq!(due, case.due, "{}", case.why);
            let slow = schedule(&case.hours)
                .walk_add(case.start, i128::from(case.secs) * NANOS_PER_SEC, false)
                .map(|(t, _)| t);
            if case.secs > 0 {
                assert_eq!(
                    slow,
                    Ok(case.due),
                    "the day-by-day walk must agree with week skipping: {}",
                    case.why
                );
            }
        }
    }

    #[test]
    fn between_table() {
        let ny = |civil| at("America/New_York", civil);
        let sunday_night = |tz: &str| BusinessHours {
            time_zone: tz.to_string(),
            weekly: vec![DayHours::new(
                Weekday::Sunday,
                Time::midnight(),
                time(6, 0, 0, 0),
            )],
            holidays: Vec::new(),
        };
        let cases = [
            (
                "Friday 16:00 to Monday 10:00 holds one hour on each side of the weekend",
                office("Europe/Berlin"),
                berlin("2026-06-05T16:00"),
                berlin("2026-06-08T10:00"),
                2 * HOUR,
            ),
            (
                "00:00–06:00 on the spring-forward night is five real hours",
                sunday_night("Europe/Berlin"),
                berlin("2026-03-29T00:00"),
                berlin("2026-03-29T12:00"),
                5 * HOUR,
            ),
            (
                "00:00–06:00 on the fall-back night is seven real hours",
                sunday_night("America/New_York"),
                ny("2026-11-01T00:00"),
                ny("2026-11-01T12:00"),
                7 * HOUR,
            ),
            (
                "01:30–02:30 ending inside the spring-forward gap closes at the change: 30 min",
                every_day("America/New_York", time(1, 30, 0, 0), time(2, 30, 0, 0)),
                ny("2026-03-08T00:00"),
                ny("2026-03-08T12:00"),
                30 * 60,
            ),
            (
                "01:30–02:30 starting inside the fall-back fold opens at its first occurrence: 2 h",
                every_day("America/New_York", time(1, 30, 0, 0), time(2, 30, 0, 0)),
                ny("2026-11-01T00:00"),
                ny("2026-11-01T12:00"),
                2 * HOUR,
            ),
            (
                "the fall-back day is 25 hours long around the clock",
                around_the_clock("America/New_York"),
                ny("2026-11-01T00:00"),
                ny("2026-11-02T00:00"),
                25 * HOUR,
            ),
            (
                "holidays hold no business time",
                christmas_office(),
                berlin("2026-12-24T00:00"),
                berlin("2026-12-30T00:00"),
                16 * HOUR,
            ),
            (
                "an empty or backwards range holds nothing",
                office("Europe/Berlin"),
                berlin("2026-06-08T12:00"),
                berlin("2026-06-08T10:00"),
                0,
            ),
            (
                "a year of office hours with no holidays: 52 weeks and Friday 2027-01-01",
                office("Europe/Berlin"),
                berlin("2026-01-02T00:00"),
                berlin("2027-01-02T00:00"),
                (52 * 5 + 1) * 8 * HOUR,
            ),
        ];
        for (why, hours, a, b, expected) in cases {
            assert_eq!(hours.between(a, b).unwrap(), expected, "{why}");
            let slow = schedule(&hours).walk_between(a, b, false).0 / NANOS_PER_SEC;
            assert_eq!(
                slow,
                i128::from(expected),
                "the day-by-day walk must agree with week skipping: {why}"
            );
        }
    }

    #[test]
    fn long_spans_skip_whole_weeks() {
        let hours = BusinessHours {
            holidays: vec![date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 1)],
            ..office("Europe/Berlin")
        };
        let s = schedule(&hours);
        let start = berlin("2026-01-05T10:00");
        let thirty_days = i128::from(30 * 24 * HOUR) * NANOS_PER_SEC;
        let (fast, fast_steps) = s.walk_add(start, thirty_days, true).unwrap();
        let (slow, slow_steps) = s.walk_add(start, thirty_days, false).unwrap();
        assert_eq!(fast, slow, "skipping weeks must not change the answer");
        assert!(
            fast_steps <= 30,
            "a 30-day target (about 4 months of office hours) must walk few days one by one, \
             not each of the {slow_steps}: walked {fast_steps}"
        );
        let (_, year_steps) = s.walk_between(start, berlin("2036-01-05T10:00"), true);
        assert!(
            year_steps <= 20 * 12,
            "ten years must cost a few steps per DST change, not one per day: walked {year_steps}"
        );
    }

    /// Hours the property tests draw from: offices, split and night shifts,
    /// holidays, DST zones, and zones without DST.
    fn sample_hours() -> Vec<BusinessHours> {
        vec![
            office("Europe/Berlin"),
            christmas_office(),
            split_shift(),
            night_shift(),
            office("Asia/Tokyo"),
            around_the_clock("America/New_York"),
            every_day("America/New_York", time(1, 30, 0, 0), time(2, 30, 0, 0)),
            BusinessHours::always(),
            BusinessHours {
                holidays: (1..=28).map(|d| date(2027, 2, d)).collect(),
                ..office("America/New_York")
            },
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn between_inverts_add(
            which in 0..9usize,
            start in 1_577_836_800i64..2_082_758_400,
            nanos in prop_oneof![Just(0i32), 0..1_000_000_000i32],
            secs in prop_oneof![1i64..8 * HOUR, 1i64..400 * 24 * HOUR],
        ) {
            let hours = &sample_hours()[which];
            let s = schedule(hours);
            let start = Timestamp::new(start, nanos).unwrap();
            let due = s.add(start, secs).unwrap();
            prop_assert_eq!(
                s.between(start, due), secs,
                "add must spend exactly the requested business time ({:?})", hours.time_zone
            );
            let just_before = due - SignedDuration::from_nanos(1);
            prop_assert!(
                s.between(start, just_before) < secs,
                "add must return the earliest such instant"
            );
            let remaining = i128::from(secs) * NANOS_PER_SEC;
            prop_assert_eq!(
                s.walk_add(start, remaining, false).unwrap().0, due,
                "week skipping must agree with the day-by-day walk"
            );
            prop_assert_eq!(
                s.walk_between(start, due, false).0, s.walk_between(start, due, true).0,
                "week skipping in between must agree with the day-by-day walk"
            );
        }

        #[test]
        fn always_is_plain_addition(
            start in -2_000_000_000i64..4_000_000_000,
            secs in 0i64..10 * 365 * 24 * HOUR,
        ) {
            let start = Timestamp::from_second(start).unwrap();
            let due = BusinessHours::always().add(start, secs).unwrap();
            prop_assert_eq!(
                due, start + SignedDuration::from_secs(secs),
                "24/7 in UTC has no closed time to skip"
            );
            prop_assert_eq!(
                BusinessHours::always().between(start, due).unwrap(), secs,
                "24/7 in UTC counts every second"
            );
        }
    }

    #[test]
    fn empty_hours_fail_fast_instead_of_hanging() {
        let empty = BusinessHours {
            time_zone: "Europe/Berlin".to_string(),
            weekly: Vec::new(),
            holidays: vec![date(2026, 12, 25)],
        };
        let start = berlin("2026-06-05T15:00");
        assert_eq!(
            empty.add(start, HOUR),
            Err(SlaError::EmptyHours),
            "no business time ever elapses, so no due exists"
        );
        assert_eq!(
            empty.between(start, start + SignedDuration::from_hours(1)),
            Err(SlaError::EmptyHours),
            "empty hours are reported, not counted as zero"
        );
        assert_eq!(
            SlaClock::start(&targets(), &empty, start),
            Err(SlaError::EmptyHours),
            "a clock cannot start without business hours"
        );
        assert!(
            SlaError::EmptyHours
                .to_string()
                .contains("business hours are empty"),
            "the reason must be readable"
        );
    }

    #[test]
    fn absurd_targets_are_out_of_range_not_endless() {
        let start = berlin("2026-06-05T15:00");
        for hours in [BusinessHours::always(), office("Europe/Berlin")] {
            assert_eq!(
                hours.add(start, i64::MAX),
                Err(SlaError::OutOfRange),
                "no calendar holds i64::MAX seconds: {}",
                hours.time_zone
            );
        }
    }

    #[test]
    fn validation_points_at_the_bad_part() {
        let mut backwards = office("Europe/Berlin");
        backwards.weekly[2] =
            DayHours::new(Weekday::Wednesday, time(17, 0, 0, 0), time(9, 0, 0, 0));
        let mut zero = office("Europe/Berlin");
        zero.weekly[4].end = zero.weekly[4].start;
        let mut overlap = office("Europe/Berlin");
        overlap.weekly[0].end = time(13, 0, 0, 0);
        overlap.weekly.push(DayHours::new(
            Weekday::Monday,
            time(12, 0, 0, 0),
            time(18, 0, 0, 0),
        ));
        let cases = [
            (
                "an interval ending before it starts is named by its index",
                backwards,
                "business_hours.weekly[2]",
                "end 09:00 must be after start 17:00",
            ),
            (
                "an interval of zero length is rejected",
                zero,
                "business_hours.weekly[4]",
                "end 09:00 must be after start 09:00",
            ),
            (
                "the later of two overlapping intervals is blamed, naming the other",
                overlap,
                "business_hours.weekly[5]",
                "12:00–18:00 on monday overlaps weekly[0] (09:00–13:00)",
            ),
            (
                "a time zone must exist in the IANA database",
                BusinessHours {
                    time_zone: "Mars/Olympus_Mons".to_string(),
                    ..office("Europe/Berlin")
                },
                "business_hours.time_zone",
                "unknown time zone \"Mars/Olympus_Mons\"",
            ),
            (
                "empty hours are a configuration mistake",
                BusinessHours {
                    weekly: Vec::new(),
                    ..office("Europe/Berlin")
                },
                "business_hours.weekly",
                "business hours are empty",
            ),
        ];
        for (why, hours, field, message) in cases {
            let err = hours.validate().expect_err(why);
            assert_eq!(err.field, field, "{why}");
            assert!(
                err.message.starts_with(message),
                "{why}: got {:?}",
                err.message
            );
            assert!(
                matches!(
                    hours.add(berlin("2026-06-05T15:00"), HOUR),
                    Err(SlaError::Invalid(_) | SlaError::EmptyHours)
                ),
                "invalid hours must not produce a due: {why}"
            );
        }
        for (why, hours) in [
            ("always() is valid", BusinessHours::always()),
            ("a night shift split at midnight is valid", night_shift()),
            ("a split shift is valid", split_shift()),
            ("holidays are valid", christmas_office()),
        ] {
            assert_eq!(hours.validate(), Ok(()), "{why}");
        }
    }

    #[test]
    fn serde_shape() {
        let hours = christmas_office();
        let json = serde_json::to_value(&hours).unwrap();
        assert_eq!(
            json["weekly"][0],
            serde_json::json!({"weekday": "monday", "start": "09:00:00", "end": "17:00:00"}),
            "weekdays travel as lowercase names like the rest of the wire format"
        );
        let back: BusinessHours = serde_json::from_value(json).unwrap();
        assert_eq!(back, hours, "hours must round-trip through JSON");
        let bad = serde_json::json!({"time_zone": "UTC", "weekly": [{"weekday": "funday", "start": "09:00", "end": "17:00"}]});
        assert!(
            serde_json::from_value::<BusinessHours>(bad).is_err(),
            "an unknown weekday must be rejected, not guessed"
        );

        let mut clock = SlaClock::start(
            &targets(),
            &office("Europe/Berlin"),
            berlin("2026-06-05T15:00"),
        )
        .unwrap();
        clock.breached.push(SlaMetric::FirstResponse);
        let json = serde_json::to_value(&clock).unwrap();
        assert_eq!(
            json["breached"],
            serde_json::json!(["first_response"]),
            "metrics are snake_case on the wire"
        );
        let back: SlaClock = serde_json::from_value(json).unwrap();
        assert_eq!(
            back, clock,
            "the clock is stored on the conversation and must round-trip"
        );
    }

    #[test]
    fn target_validation() {
        assert_eq!(targets().validate(), Ok(()), "the sample targets are valid");
        let bad = SlaTargets {
            next_response_secs: Some(0),
            ..targets()
        };
        assert_eq!(
            bad.validate().unwrap_err().field,
            "sla_targets.next_response_secs",
            "a zero target would be breached at once; the error names it"
        );
        let start = berlin("2026-06-05T15:00");
        assert!(
            matches!(
                SlaClock::start(&bad, &office("Europe/Berlin"), start),
                Err(SlaError::Invalid(_))
            ),
            "a clock must not start from invalid targets"
        );
    }

    /// First response 4 h, next response 2 h, resolution 16 h, warn 1 h early.
    fn targets() -> SlaTargets {
        SlaTargets {
            first_response_secs: Some(4 * HOUR),
            next_response_secs: Some(2 * HOUR),
            resolution_secs: Some(16 * HOUR),
            warn_before_secs: HOUR,
        }
    }

    fn event(metric: SlaMetric, kind: SlaEventKind, due: Timestamp) -> SlaEvent {
        SlaEvent { metric, kind, due }
    }

    #[test]
    fn start_sets_first_response_and_resolution() {
        let clock = SlaClock::start(
            &targets(),
            &office("Europe/Berlin"),
            berlin("2026-06-05T15:00"),
        )
        .unwrap();
        assert_eq!(
            clock.first_response_due,
            Some(berlin("2026-06-08T11:00")),
            "4 h from Friday 15:00"
        );
        assert_eq!(
            clock.resolution_due,
            Some(berlin("2026-06-09T15:00")),
            "16 h: 2 on Friday, 8 on Monday, 6 on Tuesday"
        );
        assert_eq!(
            clock.next_response_due, None,
            "no customer reply is waiting yet"
        );
    }

    #[test]
    fn warnings_then_breaches_fire_exactly_once() {
        use SlaEventKind::{Breach, Warning};
        use SlaMetric::{FirstResponse, Resolution};
        let t = targets();
        let mut clock =
            SlaClock::start(&t, &office("Europe/Berlin"), berlin("2026-06-05T15:00")).unwrap();
        let first = berlin("2026-06-08T11:00");
        let resolution = berlin("2026-06-09T15:00");
        let steps: [(&str, &str, Vec<SlaEvent>); 8] = [
            (
                "2026-06-08T09:30",
                "more than an hour before the due: quiet",
                vec![],
            ),
            (
                "2026-06-08T10:00",
                "an hour before the due: warn",
                vec![event(FirstResponse, Warning, first)],
            ),
            ("2026-06-08T10:30", "already warned: quiet", vec![]),
            (
                "2026-06-08T11:00",
                "at the due: breach",
                vec![event(FirstResponse, Breach, first)],
            ),
            ("2026-06-08T12:00", "already breached: quiet", vec![]),
            (
                "2026-06-09T14:00",
                "an hour before resolution: warn",
                vec![event(Resolution, Warning, resolution)],
            ),
            ("2026-06-09T14:00", "the same instant again: quiet", vec![]),
            (
                "2026-06-10T09:00",
                "resolution breached; first response stays quiet",
                vec![event(Resolution, Breach, resolution)],
            ),
        ];
        for (civil, why, expected) in steps {
            let events = clock.check(&t, berlin(civil));
            assert_eq!(events, expected, "{civil}: {why}");
            clock.record(&events);
        }
    }

    #[test]
    fn a_missed_warning_is_not_sent_after_the_breach() {
        let t = targets();
        let clock =
            SlaClock::start(&t, &office("Europe/Berlin"), berlin("2026-06-05T15:00")).unwrap();
        let events = clock.check(&t, berlin("2026-06-08T11:30"));
        assert_eq!(
            events,
            vec![event(
                SlaMetric::FirstResponse,
                SlaEventKind::Breach,
                berlin("2026-06-08T11:00")
            )],
            "once the due has passed, a warning would be stale: only the breach fires"
        );
    }

    #[test]
    fn next_response_cycle() {
        let t = targets();
        let hours = office("Europe/Berlin");
        let mut clock = SlaClock::start(&t, &hours, berlin("2026-06-08T09:00")).unwrap();

        clock
            .customer_replied(&t, &hours, berlin("2026-06-08T09:30"))
            .unwrap();
        assert_eq!(
            clock.next_response_due, None,
            "before the first reply, the first-response target already covers the wait"
        );

        clock.agent_replied(berlin("2026-06-08T10:00"));
        assert_eq!(
            clock.first_responded_at,
            Some(berlin("2026-06-08T10:00")),
            "the first reply is kept"
        );
        assert_eq!(
            clock.first_response_due, None,
            "a met first response no longer falls due"
        );
        assert!(
            clock.breached.is_empty(),
            "replied within 4 h: nothing breached"
        );

        clock
            .customer_replied(&t, &hours, berlin("2026-06-08T16:00"))
            .unwrap();
        let due = berlin("2026-06-09T10:00");
        assert_eq!(
            clock.next_response_due,
            Some(due),
            "2 h from Monday 16:00: one today, one Tuesday"
        );
        clock
            .customer_replied(&t, &hours, berlin("2026-06-09T09:00"))
            .unwrap();
        assert_eq!(
            clock.next_response_due,
            Some(due),
            "a second message does not push the due later: the oldest unanswered one counts"
        );

        let events = clock.check(&t, berlin("2026-06-09T10:00"));
        assert_eq!(
            events,
            vec![event(SlaMetric::NextResponse, SlaEventKind::Breach, due)],
            "the next response is breached at its due"
        );
        clock.record(&events);
        clock.agent_replied(berlin("2026-06-09T10:30"));
        assert_eq!(
            clock.next_response_due, None,
            "the reply answers the pending message"
        );
        assert_eq!(
            clock.first_responded_at,
            Some(berlin("2026-06-08T10:00")),
            "later replies do not rewrite the first response"
        );

        clock
            .customer_replied(&t, &hours, berlin("2026-06-09T11:00"))
            .unwrap();
        let events = clock.check(&t, berlin("2026-06-09T13:00"));
        assert_eq!(
            events,
            vec![event(
                SlaMetric::NextResponse,
                SlaEventKind::Breach,
                berlin("2026-06-09T13:00")
            )],
            "each next-response cycle can breach again: the reply re-armed it"
        );
    }

    #[test]
    fn stale_events_do_not_silence_the_next_cycle() {
        let t = targets();
        let hours = office("Europe/Berlin");
        let mut clock = SlaClock::start(&t, &hours, berlin("2026-06-08T09:00")).unwrap();
        clock.agent_replied(berlin("2026-06-08T09:10"));
        clock
            .customer_replied(&t, &hours, berlin("2026-06-08T10:00"))
            .unwrap();
        let events = clock.check(&t, berlin("2026-06-08T12:00"));
        clock.agent_replied(berlin("2026-06-08T12:01"));
        clock.record(&events);
        assert!(
            !clock.breached.contains(&SlaMetric::NextResponse),
            "the breach was about a due already answered; recording it late must not mark the new cycle"
        );
    }

    #[test]
    fn pause_over_a_weekend_consumes_no_time_and_prevents_breach() {
        let t = targets();
        let hours = office("Europe/Berlin");
        let mut clock = SlaClock::start(&t, &hours, berlin("2026-06-05T15:00")).unwrap();
        clock.agent_replied(berlin("2026-06-05T15:30"));
        let resolution_due = berlin("2026-06-09T15:00");
        assert_eq!(
            clock.resolution_due,
            Some(resolution_due),
            "16 h from Friday 15:00"
        );

        // Waiting on the customer from Friday 15:30 until Wednesday 09:00:
        // 1.5 h on Friday and all of Monday and Tuesday are paused business
        // time; the weekend in between is not business time at all.
        clock.pause(berlin("2026-06-05T15:30"));
        for civil in ["2026-06-08T12:00", "2026-06-09T16:00"] {
            assert_eq!(
                clock.check(&t, berlin(civil)),
                vec![],
                "{civil}: a paused clock fires nothing, even past the old due (Tuesday 15:00)"
            );
        }
        let remaining = hours
            .between(berlin("2026-06-05T15:30"), resolution_due)
            .unwrap();
        assert_eq!(
            remaining,
            15 * HOUR + 30 * 60,
            "1.5 h Friday, 8 h Monday, 6 h Tuesday were left"
        );
        clock.resume(&hours, berlin("2026-06-10T09:00")).unwrap();
        assert!(!clock.is_paused(), "resume ends the pause");
        let new_due = clock.resolution_due.unwrap();
        assert_eq!(
            new_due,
            berlin("2026-06-11T16:30"),
            "the due moves by the 17.5 business hours spent paused; the weekend moves nothing"
        );
        assert_eq!(
            hours.between(berlin("2026-06-10T09:00"), new_due).unwrap(),
            remaining,
            "after resuming the agent has exactly the business time that was left at the pause"
        );
        assert_eq!(
            clock.check(&t, berlin("2026-06-10T10:00")),
            vec![],
            "the old due has passed but the pause bought the time back: no breach"
        );
    }

    #[test]
    fn pause_entirely_outside_business_hours_moves_nothing() {
        let t = targets();
        let hours = office("Europe/Berlin");
        let mut clock = SlaClock::start(&t, &hours, berlin("2026-06-05T15:00")).unwrap();
        let before = clock.clone();
        clock.pause(berlin("2026-06-05T18:00"));
        clock.resume(&hours, berlin("2026-06-08T08:00")).unwrap();
        assert_eq!(
            clock, before,
            "a pause from Friday evening to Monday morning holds no business time"
        );
    }

    #[test]
    fn customer_reply_ends_the_wait_and_a_moved_due_warns_again() {
        use SlaEventKind::Warning;
        use SlaMetric::Resolution;
        let t = SlaTargets {
            resolution_secs: Some(3 * HOUR),
            ..targets()
        };
        let hours = office("Europe/Berlin");
        let mut clock = SlaClock::start(&t, &hours, berlin("2026-06-08T09:00")).unwrap();
        let events = clock.check(&t, berlin("2026-06-08T11:00"));
        assert_eq!(
            events,
            vec![event(Resolution, Warning, berlin("2026-06-08T12:00"))],
            "resolution (3 h, due 12:00) warns at 11:00; first response (13:00) is not close yet"
        );
        clock.record(&events);
        clock.agent_replied(berlin("2026-06-08T11:00"));
        clock.pause(berlin("2026-06-08T11:00"));

        clock
            .customer_replied(&t, &hours, berlin("2026-06-08T14:00"))
            .unwrap();
        assert!(
            !clock.is_paused(),
            "a customer reply ends waiting on the customer"
        );
        let moved = berlin("2026-06-08T15:00");
        assert_eq!(
            clock.resolution_due,
            Some(moved),
            "resolution moves by the 3 business hours spent waiting"
        );
        assert_eq!(
            clock.next_response_due,
            Some(berlin("2026-06-08T16:00")),
            "the customer's message starts the next-response clock"
        );
        assert_eq!(
            clock.check(&t, berlin("2026-06-08T14:00")),
            vec![event(Resolution, Warning, moved)],
            "a due moved by a pause is a new promise and gets its own warning"
        );
    }

    #[test]
    fn resolving_clears_dues_and_records_late_resolution() {
        let t = targets();
        let hours = office("Europe/Berlin");
        let mut clock = SlaClock::start(&t, &hours, berlin("2026-06-05T15:00")).unwrap();
        clock.agent_replied(berlin("2026-06-05T15:10"));
        clock
            .customer_replied(&t, &hours, berlin("2026-06-05T15:20"))
            .unwrap();
        clock.resolved(berlin("2026-06-10T09:00"));
        assert_eq!(
            (
                clock.first_response_due,
                clock.next_response_due,
                clock.resolution_due
            ),
            (None, None, None),
            "a resolved conversation has nothing left to fall due"
        );
        assert_eq!(
            clock.breached,
            vec![SlaMetric::Resolution],
            "resolved after Tuesday 15:00 without a check in between: still a breach on record"
        );
        assert_eq!(
            clock.check(&t, berlin("2026-07-01T09:00")),
            vec![],
            "nothing fires after resolution"
        );

        clock
            .customer_replied(&t, &hours, berlin("2026-06-10T10:00"))
            .unwrap();
        assert_eq!(
            clock.resolved_at, None,
            "a customer reply reopens the conversation"
        );
        assert_eq!(
            clock.next_response_due,
            Some(berlin("2026-06-10T12:00")),
            "the reopened conversation needs an answer within the next-response target"
        );
    }
}
