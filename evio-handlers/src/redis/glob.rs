//! Redis's glob patterns (`stringmatchlen` in its `util.c`, with `nocase` set, as
//! `CONFIG GET` calls it), matched in time linear in the pattern times the subject and
//! in constant stack, whatever the pattern.
//!
//! Redis matches recursively, one level per `*`, and backtracks: a pattern of 30 stars
//! and an `x` costs an exponential number of steps in a plain recursive matcher (each
//! star tries every split of the subject), and 150,000 stars overflow a thread's stack.
//! Here every `*` run is collapsed as it is met and only the last one is a
//! backtracking point: each token fails at one subject byte, the last star then takes
//! one more byte, and the tokens after it are tried again from there. As all tokens
//! but `*` match exactly one byte, a match of the tokens after the last star at the
//! earliest place is as good as any later one (the star can absorb the difference),
//! so nothing before the last star need ever be tried again. The subject's start for
//! the last star only moves forward, so there are at most `subject.len()` restarts of
//! at most the pattern's length each.
//!
//! # Semantics, read from Redis 7.0's `stringmatchlen_impl` and checked against
//! `redis-server` 7.0.15 (x86-64, glibc)
//!
//! - `*` matches any run of bytes, `?` any one byte, other bytes themselves; `\x` is
//!   `x` taken literally (a `\` at the very end is itself). Letters match in either
//!   case (ASCII only, as C's `tolower` in the C locale).
//! - `[...]` matches one byte in the set: `^` first negates it; `a-z` is a range,
//!   reversed ranges (`z-a`) included; `\x` inside is `x` itself, compared with its
//!   case (Redis compares it without `tolower`). `]` right after `[` (or `[^`) ends an
//!   empty set. A set that is never closed runs to the end of the pattern.
//! - Range ends compare as C's `char` on x86-64, which is signed: the ends are put in
//!   order as signed bytes, then each end and the byte are lowercased as `tolower`
//!   does, which gives bytes from 0x80 their unsigned value. So `[a-\xff]` is empty
//!   (its ends, ordered as -1 and 97, become 255 and 97), while `[\x01-\x7f]` holds
//!   every ASCII byte but NUL.
//! - An empty subject matches only the empty pattern (Redis's loop never runs: `*`
//!   does not match an empty string).
//! - A pattern with more than [`MAX_STAR_RUNS`] runs of `*` followed by something
//!   else never matches (Redis's guard against abusive patterns, CVE-2024-31228,
//!   present in the Debian build of 7.0.15 measured here). It can only make a
//!   difference for subjects longer than 1,000 bytes.

/// Runs of `*` (each followed by more of the pattern) past which Redis gives up on a
/// pattern: its recursion is at most this deep.
pub(crate) const MAX_STAR_RUNS: u32 = 1000;

/// Whether `pattern` matches `subject` as Redis's `stringmatchlen(…, nocase = 1)`
/// decides it (see the module's docs), in O(`pattern.len()` × `subject.len()`) time
/// and O(1) memory.
pub(crate) fn glob_match(pattern: &[u8], subject: &[u8]) -> bool {
    glob_match_counting(pattern, subject).0
}

/// [`glob_match`], and the steps it took: one per pattern byte looked at as a token (a
/// set counts its whole length), plus one per token that failed. Never more than
/// (`pattern.len()` + 1) × (`subject.len()` + 1); the tests hold it to that.
pub(crate) fn glob_match_counting(pattern: &[u8], subject: &[u8]) -> (bool, u64) {
    let (m, n) = (pattern.len(), subject.len());
    if n == 0 {
        return (m == 0, 1);
    }
    let mut steps = 0u64;
    let (mut p, mut s) = (0, 0);
    // The last star run met: where the pattern goes on after it, and the subject
    // position the rest was last tried from.
    let mut star: Option<(usize, usize)> = None;
    let mut star_runs = 0u32;
    loop {
        let matched = if s == n {
            // Every subject byte is matched: what is left of the pattern must be stars.
            while p < m && pattern[p] == b'*' {
                p += 1;
                steps += 1;
            }
            steps += 1;
            if p == m {
                return (true, steps);
            }
            false
        } else if p == m {
            steps += 1;
            false
        } else {
            let c = subject[s];
            match pattern[p] {
                b'*' => {
                    while p < m && pattern[p] == b'*' {
                        p += 1;
                        steps += 1;
                    }
                    if p == m {
                        // A trailing star takes the rest of the subject.
                        return (true, steps);
                    }
                    star_runs += 1;
                    if star_runs > MAX_STAR_RUNS {
                        return (false, steps);
                    }
                    star = Some((p, s));
                    continue;
                }
                b'?' => {
                    steps += 1;
                    p += 1;
                    true
                }
                b'[' => {
                    let (hit, end) = set(pattern, p + 1, c);
                    steps += (end - p) as u64;
                    p = end;
                    hit
                }
                b'\\' if p + 1 < m => {
                    steps += 2;
                    p += 2;
                    lower(pattern[p - 1]) == lower(c)
                }
                b => {
                    steps += 1;
                    p += 1;
                    lower(b) == lower(c)
                }
            }
        };
        if matched {
            s += 1;
            continue;
        }
        steps += 1;
        // The star before takes one more byte, and the rest is tried from there; the
        // rest needs at least one byte (its first token is not a star), so the last
        // place worth trying is the subject's last byte.
        match star {
            Some((after, from)) if from + 1 < n => {
                star = Some((after, from + 1));
                p = after;
                s = from + 1;
            }
            _ => return (false, steps),
        }
    }
}

/// C's `tolower` in the C locale, on a byte (`char` values from 0x80 come out as
/// their unsigned value).
fn lower(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

/// The set whose body starts at `pattern[at]` (just after its `[`): whether it holds
/// `c`, and where the pattern goes on after it (past its `]`, or at the end when it is
/// not closed). Redis's loop, test for test and in its order.
fn set(pattern: &[u8], mut at: usize, c: u8) -> (bool, usize) {
    let negate = pattern.get(at) == Some(&b'^');
    if negate {
        at += 1;
    }
    let mut hit = false;
    loop {
        match pattern.get(at..).unwrap_or_default() {
            // An escaped byte is compared exactly, without `tolower`.
            [b'\\', x, ..] => {
                hit |= *x == c;
                at += 2;
            }
            [b']', ..] => {
                at += 1;
                break;
            }
            [] => break,
            [a, b'-', z, ..] => {
                // Ordered as C's signed `char`, then lowercased as `tolower` does.
                let (lo, hi) = if (*a as i8) > (*z as i8) {
                    (*z, *a)
                } else {
                    (*a, *z)
                };
                hit |= (lower(lo)..=lower(hi)).contains(&lower(c));
                at += 3;
            }
            [x, ..] => {
                hit |= lower(*x) == lower(c);
                at += 1;
            }
        }
    }
    (hit != negate, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    use quickcheck::{Gen, QuickCheck, TestResult};

    /// What `CONFIG GET <pattern>` answered for `save` on redis-server 7.0.15 here.
    #[test]
    fn globs_match_as_redis_s() {
        let yes: [&[u8]; 19] = [
            b"*",
            b"****",
            b"SA*",
            b"s?ve",
            b"[rs]ave",
            b"[^a]ave",
            b"\\save",
            b"[\\s]ave",
            b"[S]ave",
            b"[R-T]ave",
            b"[t-r]ave",
            b"[s-s]ave",
            b"[\x01-\x7f]ave",
            b"[^\x80-\x81]ave",
            b"[^]ave",
            b"[!s]ave",
            b"sav[^x",
            b"sav[e",
            b"s*v*e*",
        ];
        for pattern in yes {
            assert!(glob_match(pattern, b"save"), "{:?}", pattern.escape_ascii());
        }
        let no: [&[u8]; 21] = [
            b"*x*",
            b"[^s]ave",
            b"sav",
            b"save?",
            b"?",
            b"[\\S]ave",
            b"[a-Z]ave",
            b"[\x80-r]ave",
            b"[r-\x80]ave",
            b"[\x80-t]ave",
            b"[\x00-\xff]ave",
            b"[a-\xff]ave",
            b"[\xff-a]ave",
            b"[\\\x80]ave",
            b"[]ave",
            b"[]]ave",
            b"[\\]ave",
            b"[r-]ave",
            b"s[a-",
            b"s[a-b",
            b"sav\\",
        ];
        for pattern in no {
            assert!(
                !glob_match(pattern, b"save"),
                "{:?}",
                pattern.escape_ascii()
            );
        }
        assert!(glob_match(b"[a-z]ppendonly", b"appendonly"));
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"*", b""));
        assert!(!glob_match(b"", b"x"));
    }

    /// `KEYS` with these patterns against one key of 2,000 `a`s, on redis-server
    /// 7.0.15 here: 1,000 runs of stars before the end are followed, 1,001 are not.
    #[test]
    fn more_than_a_thousand_star_runs_never_match_as_in_redis() {
        let subject = [b'a'; 2000];
        let runs = |n: usize| b"*?".repeat(n);
        assert!(glob_match(&runs(999), &subject));
        assert!(glob_match(&runs(1000), &subject));
        assert!(!glob_match(&runs(1001), &subject));
        assert!(!glob_match(&[runs(1001), b"*".to_vec()].concat(), &subject));
        assert!(glob_match(&[runs(1000), b"?".to_vec()].concat(), &subject));
        // One run, however long, is one.
        assert!(glob_match(&[b'*'; 150_000], b"save"));
    }

    /// The patterns that took the old recursive matcher seconds, or its stack.
    #[test]
    fn abusive_patterns_take_few_steps() {
        for subject in [&b"appendonly"[..], b"save", &[b'a'; 1000]] {
            for pattern in [
                [&[b'*'; 30][..], b"x"].concat(),
                b"*a".repeat(30),
                [b"a*".repeat(40), b"b".to_vec()].concat(),
                vec![b'*'; 150_000],
                [&[b'*'; 150_000][..], b"x"].concat(),
                b"*?".repeat(1000),
            ] {
                let (_, steps) = glob_match_counting(&pattern, subject);
                let bound = (pattern.len() as u64 + 1) * (subject.len() as u64 + 1);
                assert!(steps <= bound, "{steps} > {bound}");
            }
        }
        // A long run of stars costs its length once, not once per subject byte.
        let (hit, steps) = glob_match_counting(&[&[b'*'; 150_000][..], b"x"].concat(), b"save");
        assert!(!hit);
        assert!(steps < 150_100, "{steps}");
    }

    /// A token of the reference matcher.
    #[derive(Clone, Debug)]
    enum Token {
        Star,
        Any,
        Byte(u8),
        /// Members (exact bytes, nocase bytes, inclusive ranges of lowered values) and
        /// negation.
        Set {
            exact: Vec<u8>,
            folded: Vec<u8>,
            ranges: Vec<(u8, u8)>,
            negate: bool,
        },
    }

    impl Token {
        fn matches(&self, c: u8) -> bool {
            let l = c.to_ascii_lowercase();
            match self {
                Token::Star => true,
                Token::Any => true,
                Token::Byte(b) => b.to_ascii_lowercase() == l,
                Token::Set {
                    exact,
                    folded,
                    ranges,
                    negate,
                } => {
                    let hit = exact.contains(&c)
                        || folded.iter().any(|f| f.to_ascii_lowercase() == l)
                        || ranges.iter().any(|&(lo, hi)| lo <= l && l <= hi);
                    hit != *negate
                }
            }
        }
    }

    /// Redis's pattern cut into tokens, read from its C code as it walks a pattern
    /// with a pointer and a length.
    fn tokens(pattern: &[u8]) -> Vec<Token> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < pattern.len() {
            let left = pattern.len() - i;
            match pattern[i] {
                b'*' => {
                    if !matches!(out.last(), Some(Token::Star)) {
                        out.push(Token::Star);
                    }
                    i += 1;
                }
                b'?' => {
                    out.push(Token::Any);
                    i += 1;
                }
                b'\\' if left >= 2 => {
                    out.push(Token::Byte(pattern[i + 1]));
                    i += 2;
                }
                b'[' => {
                    i += 1;
                    let negate = pattern.get(i) == Some(&b'^');
                    if negate {
                        i += 1;
                    }
                    let (mut exact, mut folded, mut ranges) = (vec![], vec![], vec![]);
                    loop {
                        let left = pattern.len().saturating_sub(i);
                        if left >= 2 && pattern[i] == b'\\' {
                            exact.push(pattern[i + 1]);
                            i += 2;
                        } else if left == 0 {
                            break;
                        } else if pattern[i] == b']' {
                            i += 1;
                            break;
                        } else if left >= 3 && pattern[i + 1] == b'-' {
                            let (mut start, mut end) = (pattern[i] as i8, pattern[i + 2] as i8);
                            if start > end {
                                std::mem::swap(&mut start, &mut end);
                            }
                            ranges.push((
                                (start as u8).to_ascii_lowercase(),
                                (end as u8).to_ascii_lowercase(),
                            ));
                            i += 3;
                        } else {
                            folded.push(pattern[i]);
                            i += 1;
                        }
                    }
                    out.push(Token::Set {
                        exact,
                        folded,
                        ranges,
                        negate,
                    });
                }
                b => {
                    out.push(Token::Byte(b));
                    i += 1;
                }
            }
        }
        out
    }

    /// The reference: a table of which token suffixes match which subject suffixes,
    /// filled from the ends (no recursion, no backtracking), plus Redis's two rules
    /// that are not plain globbing (an empty subject; too many star runs).
    fn reference(pattern: &[u8], subject: &[u8]) -> bool {
        let tokens = tokens(pattern);
        if subject.is_empty() {
            return pattern.is_empty();
        }
        let runs = tokens
            .iter()
            .enumerate()
            .filter(|&(i, t)| matches!(t, Token::Star) && i + 1 < tokens.len())
            .count();
        if runs > MAX_STAR_RUNS as usize {
            return false;
        }
        let (t, n) = (tokens.len(), subject.len());
        // m[i][j]: tokens[i..] match subject[j..].
        let mut m = vec![vec![false; n + 1]; t + 1];
        m[t][n] = true;
        for i in (0..t).rev() {
            for j in (0..=n).rev() {
                m[i][j] = match &tokens[i] {
                    Token::Star => m[i + 1][j] || (j < n && m[i][j + 1]),
                    token => j < n && token.matches(subject[j]) && m[i + 1][j + 1],
                };
            }
        }
        m[0][0]
    }

    /// A number below `n` drawn from the generator.
    fn below(g: &mut Gen, n: usize) -> usize {
        <usize as quickcheck::Arbitrary>::arbitrary(g) % n
    }

    /// A random pattern of `pieces` pieces that matter (star runs of up to
    /// `max_stars`, `?`, sets of every form, escapes, literals in both cases, a byte
    /// from 0x80), over the subjects' alphabet, so that matches are common.
    fn pattern(g: &mut Gen, pieces: usize, max_stars: usize) -> Vec<u8> {
        const SETS: [&[u8]; 12] = [
            b"[ab]",
            b"[^a]",
            b"[a-c]",
            b"[C-A]",
            b"[\\a]",
            b"[\\A]",
            b"[]",
            b"[^]",
            b"[a-]",
            b"[\x80-b]",
            b"[b-\xff]",
            b"[",
        ];
        let mut out = Vec::new();
        for _ in 0..pieces {
            match below(g, 9) {
                0 | 1 => out.extend(std::iter::repeat_n(b'*', 1 + below(g, max_stars))),
                2 => out.push(b'?'),
                3 => out.extend(*g.choose(&SETS).expect("sets")),
                4 => out.extend([b'\\', *g.choose(b"aAb*?[\\").expect("bytes")]),
                _ => out.push(*g.choose(b"aAbBc\x80").expect("bytes")),
            }
        }
        out
    }

    /// A random subject of `len` bytes from `alphabet`.
    fn subject(g: &mut Gen, len: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..len)
            .map(|_| *g.choose(alphabet).expect("bytes"))
            .collect()
    }

    #[test]
    fn small_patterns_agree_with_a_table_reference() {
        fn property(seed: u64) -> TestResult {
            let mut g = Gen::from_size_and_seed(100, seed);
            for _ in 0..200 {
                let pieces = below(&mut g, 8);
                let p = pattern(&mut g, pieces, 3);
                let len = below(&mut g, 10);
                let s = subject(&mut g, len, b"aAbBc\x80");
                let (got, steps) = glob_match_counting(&p, &s);
                if got != reference(&p, &s) {
                    return TestResult::error(format!(
                        "{:?} against {:?}: matcher says {got}",
                        p.escape_ascii().to_string(),
                        s.escape_ascii().to_string()
                    ));
                }
                if steps > (p.len() as u64 + 1) * (s.len() as u64 + 1) {
                    return TestResult::error(format!("{steps} steps"));
                }
            }
            TestResult::passed()
        }
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(100, 17))
            .tests(300)
            .quickcheck(property as fn(u64) -> TestResult);
    }

    /// A pattern that nearly matches `subject`: it walks the subject with literals (in
    /// either case), `?`, sets holding the byte, and star runs (one piece in
    /// `1..=400`, drawn per pattern) that skip a few bytes, and half of the time ends
    /// with a byte the subject does not end with. Such patterns make a backtracking
    /// matcher search longest: after the last star, a long run of pieces that match
    /// nearly everywhere, then a miss.
    fn near_miss(g: &mut Gen, subject: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let star_every = 1 + below(g, 400);
        let mut i = 0;
        while i < subject.len() {
            let c = subject[i];
            if below(g, star_every) == 0 {
                out.extend(std::iter::repeat_n(b'*', 1 + below(g, 20)));
                i += below(g, 4);
                continue;
            }
            match below(g, 8) {
                0 | 1 => out.push(b'?'),
                2 => out.extend([b'[', b'b', c, b']']),
                3 => out.push(c.to_ascii_uppercase()),
                _ => out.push(c),
            }
            i += 1;
        }
        if below(g, 2) == 0 {
            out.push(b'x');
        }
        out
    }

    /// The classic worst case of a star-backtracking matcher: a few star runs, each
    /// followed by a long run of pieces that match any `a` (`a`, `A`, `?`, `[Ab]`),
    /// then usually a miss: every place the last star can start from is tried, each
    /// for the whole run after it.
    fn worst_case(g: &mut Gen) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..1 + below(g, 4) {
            out.extend(std::iter::repeat_n(b'*', 1 + below(g, 40)));
            for _ in 0..below(g, 1500) {
                out.extend(*g.choose(&[&b"a"[..], b"A", b"?", b"[Ab]"]).expect("pieces"));
            }
        }
        if below(g, 4) != 0 {
            out.push(b'x');
        }
        out
    }

    #[test]
    fn large_patterns_stay_within_the_step_bound_and_agree() {
        fn property(seed: u64) -> TestResult {
            let mut g = Gen::from_size_and_seed(100, seed);
            // Subjects of thousands of bytes, mostly or only `a`s in either case (which
            // every literal `a` matches); patterns of thousands of stars (in runs of up
            // to 40, and in fewer runs than Redis's limit, so the whole search runs),
            // sets, `?` and literals: random ones a third of the time, else ones made
            // to nearly match, or to search longest.
            let len = below(&mut g, 3000);
            const ALPHABETS: [&[u8]; 2] = [b"aaaaaaaaaAc", b"aA"];
            let alphabet = g.choose(&ALPHABETS).expect("alphabets");
            let s = subject(&mut g, len, alphabet);
            let p = match below(&mut g, 3) {
                0 => {
                    let pieces = 1 + below(&mut g, 1500);
                    pattern(&mut g, pieces, 40)
                }
                1 => near_miss(&mut g, &s),
                _ => worst_case(&mut g),
            };
            let (got, steps) = glob_match_counting(&p, &s);
            let bound = (p.len() as u64 + 1) * (s.len() as u64 + 1);
            if steps > bound {
                return TestResult::error(format!(
                    "{steps} steps > {bound} for a pattern of {} and a subject of {}",
                    p.len(),
                    s.len()
                ));
            }
            if got != reference(&p, &s) {
                return TestResult::error(format!("disagrees with the reference: {got}"));
            }
            TestResult::passed()
        }
        QuickCheck::new()
            .rng(Gen::from_size_and_seed(100, 1017))
            .tests(30)
            .quickcheck(property as fn(u64) -> TestResult);
    }
}
