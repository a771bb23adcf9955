//! Dates (SEARCH `SINCE 1-Feb-1994`) and date-times (APPEND and INTERNALDATE
//! `"17-Jul-1996 02:44:25 -0700"`).

use std::fmt;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `date-month`, case-insensitively, to 1..=12.
pub(crate) fn month_from_name(name: &[u8]) -> Option<u8> {
    MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| i as u8 + 1)
}

fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A calendar date without a time or zone, as SEARCH compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// A date, if it exists (`Date::new(2023, 2, 29)` is `None`). Years run 1 to 9999.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then_some(Self { year, month, day })
    }

    pub fn year(&self) -> u16 {
        self.year
    }

    /// 1 to 12.
    pub fn month(&self) -> u8 {
        self.month
    }

    pub fn day(&self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before), for comparing with stored timestamps.
    pub fn days_since_unix_epoch(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let year = i64::from(self.year) - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month = i64::from(self.month);
        let day_of_year =
            (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The date `days` after 1970-01-01, if its year is within 1 to 9999.
    pub fn from_days_since_unix_epoch(days: i64) -> Option<Self> {
        // Howard Hinnant's civil_from_days.
        let z = days.checked_add(719_468)?;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Self::new(u16::try_from(year).ok()?, month as u8, day as u8)
    }

    fn month_name(&self) -> &'static str {
        MONTHS
            .get(usize::from(self.month).wrapping_sub(1))
            .copied()
            .unwrap_or("Jan")
    }
}

/// `date-text` as IMAP writes it: `1-Feb-1994`.
impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:04}", self.day, self.month_name(), self.year)
    }
}

/// A date, a time and the zone it was given in, as APPEND and INTERNALDATE carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    date: Date,
    hour: u8,
    minute: u8,
    second: u8,
    zone_minutes: i16,
}

impl DateTime {
    /// A date-time, if the time is valid (a leap second `:60` is allowed) and the zone is
    /// within ±99:59.
    pub fn new(date: Date, hour: u8, minute: u8, second: u8, zone_minutes: i16) -> Option<Self> {
        let valid = hour < 24 && minute < 60 && second <= 60 && zone_minutes.abs() <= 99 * 60 + 59;
        valid.then_some(Self {
            date,
            hour,
            minute,
            second,
            zone_minutes,
        })
    }

    /// The moment `unix_seconds` as seen in the zone `zone_minutes` east of UTC.
    pub fn from_unix_timestamp(unix_seconds: i64, zone_minutes: i16) -> Option<Self> {
        let local = unix_seconds.checked_add(i64::from(zone_minutes) * 60)?;
        let date = Date::from_days_since_unix_epoch(local.div_euclid(86_400))?;
        let seconds = local.rem_euclid(86_400);
        Self::new(
            date,
            (seconds / 3600) as u8,
            (seconds / 60 % 60) as u8,
            (seconds % 60) as u8,
            zone_minutes,
        )
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix_timestamp(&self) -> i64 {
        self.date.days_since_unix_epoch() * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.zone_minutes) * 60
    }

    pub fn date(&self) -> Date {
        self.date
    }

    pub fn hour(&self) -> u8 {
        self.hour
    }

    pub fn minute(&self) -> u8 {
        self.minute
    }

    pub fn second(&self) -> u8 {
        self.second
    }

    /// The zone's offset east of UTC, in minutes (`-0700` is -420).
    pub fn zone_minutes(&self) -> i16 {
        self.zone_minutes
    }
}

/// `date-time` without its quotes: `17-Jul-1996 02:44:25 -0700`.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.zone_minutes < 0 { '-' } else { '+' };
        let zone = self.zone_minutes.unsigned_abs();
        write!(
            f,
            "{:02}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}",
            self.date.day,
            self.date.month_name(),
            self.date.year,
            self.hour,
            self.minute,
            self.second,
            sign,
            zone / 60,
            zone % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_round_trip() {
        let dt = DateTime::from_unix_timestamp(837_596_665, -420).unwrap();
        assert_eq!(dt.to_string(), "17-Jul-1996 02:44:25 -0700");
        assert_eq!(dt.unix_timestamp(), 837_596_665);
        let epoch = Date::new(1970, 1, 1).unwrap();
        assert_eq!(epoch.days_since_unix_epoch(), 0);
        assert_eq!(
            Date::from_days_since_unix_epoch(-1),
            Date::new(1969, 12, 31)
        );
        assert_eq!(
            Date::new(2000, 3, 1).unwrap().days_since_unix_epoch(),
            11_017
        );
    }

    #[test]
    fn dates_print_as_imap_writes_them() {
        assert_eq!(Date::new(1994, 2, 1).unwrap().to_string(), "1-Feb-1994");
        assert!(Date::new(1900, 2, 29).is_none());
        assert!(Date::new(2000, 2, 29).is_some());
    }
}
