//! The `Date` header's value: an RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
//! formatted from seconds since the Unix epoch without a calendar crate or an
//! allocation.

/// Length of an IMF-fixdate: every one has exactly this many bytes.
pub const DATE_LEN: usize = 29;

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Formats `secs` seconds since 1970-01-01 00:00:00 UTC as an IMF-fixdate.
///
/// Years past 9999 do not fit the format's four digits: they are shown as 9999 (a
/// wall clock that far off is broken, and the header keeps its length).
///
/// ```
/// use evio_handlers::http::imf_fixdate;
///
/// assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn imf_fixdate(secs: u64) -> [u8; DATE_LEN] {
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let year = year.min(9999);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    two_digits(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two_digits(&mut out[12..14], year / 100);
    two_digits(&mut out[14..16], year % 100);
    two_digits(&mut out[17..19], in_day / 3600);
    two_digits(&mut out[20..22], in_day / 60 % 60);
    two_digits(&mut out[23..25], in_day % 60);
    out
}

fn two_digits(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// Year, month (1–12) and day (1–31) of the `days`-th day after 1970-01-01, in the
/// proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`, for days on or
/// after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so that a leap day ends its (400-year) era.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Reads an IMF-fixdate back into seconds since the Unix epoch: `None` unless `date`
/// is exactly in that format, with a weekday that matches the date and every field in
/// range. For checking what a server sent (the simulator's model, the tests).
///
/// ```
/// use evio_handlers::http::{imf_fixdate, parse_imf_fixdate};
///
/// assert_eq!(parse_imf_fixdate(&imf_fixdate(1_700_000_000)), Some(1_700_000_000));
/// assert_eq!(parse_imf_fixdate(b"Mon, 06 Nov 1994 08:49:37 GMT"), None); // a Sunday
/// ```
pub fn parse_imf_fixdate(date: &[u8]) -> Option<u64> {
    if date.len() != DATE_LEN
        || &date[3..5] != b", "
        || date[7] != b' '
        || date[11] != b' '
        || date[16] != b' '
        || date[19] != b':'
        || date[22] != b':'
        || &date[25..] != b" GMT"
    {
        return None;
    }
    let num = |range: core::ops::Range<usize>| -> Option<u64> {
        date[range].iter().try_fold(0u64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
        })
    };
    let (day, year) = (num(5..7)?, num(12..16)?);
    let (hour, minute, second) = (num(17..19)?, num(20..22)?, num(23..25)?);
    let month = MONTHS.iter().position(|m| m[..] == date[8..11])? as u64 + 1;
    if year < 1970 || hour > 23 || minute > 59 || second > 59 || day == 0 {
        return None;
    }
    // Days from the epoch to the first of the month, by counting whole years and the
    // months before (slow and plain: the inverse of the formatter, not a copy of it).
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let month_len = |y: u64, m: u64| match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day > month_len(year, month) {
        return None;
    }
    let mut days: u64 = (1970..year).map(|y| if leap(y) { 366 } else { 365 }).sum();
    days += (1..month).map(|m| month_len(year, m)).sum::<u64>();
    days += day - 1;
    if &date[..3] != DAYS[(days % 7) as usize] {
        return None;
    }
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        // A leap day, and the day after a century that is not a leap year.
        assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            &imf_fixdate(4_107_542_400),
            b"Mon, 01 Mar 2100 00:00:00 GMT"
        );
        assert_eq!(
            &imf_fixdate(1_700_000_000),
            b"Tue, 14 Nov 2023 22:13:20 GMT"
        );
        assert_eq!(
            &imf_fixdate(253_402_300_799),
            b"Fri, 31 Dec 9999 23:59:59 GMT"
        );
        // Past year 9999 the year stays 9999: the length never changes.
        assert_eq!(imf_fixdate(u64::MAX).len(), DATE_LEN);
    }

    #[test]
    fn formatting_and_parsing_agree_over_many_days() {
        // Every day from 1970 to 2200 at a varying time of day, so every month, leap
        // year and weekday comes up; the parser is an independent slow calendar.
        for day in 0..84_000u64 {
            let secs = day * 86_400 + (day * 7919) % 86_400;
            assert_eq!(
                parse_imf_fixdate(&imf_fixdate(secs)),
                Some(secs),
                "day {day}"
            );
        }
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            &b"Sun, 06 Nov 1994 08:49:37 UTC"[..],
            b"Sun, 06 Nov 1994 08:49:37 GMT ",
            b"Sun, 31 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 24:49:37 GMT",
            b"Sun, 06 Nov 1994 08:60:37 GMT",
            b"Sun, 06 Xyz 1994 08:49:37 GMT",
            b"Sun, 0x Nov 1994 08:49:37 GMT",
            b"Sun; 06 Nov 1994 08:49:37 GMT",
            b"Sat, 06 Nov 1994 08:49:37 GMT",
            b"",
        ] {
            assert_eq!(
                parse_imf_fixdate(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
