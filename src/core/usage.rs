//! Usage an agent reports (tokens and cost): the ranges a report must stay in, and totals that
//! can neither overflow nor go down (DESIGN §4). Everything that writes spend — `orch-tui worker
//! usage`, an adapter that parses an agent's own figures — goes through [`Totals::record`].
//!
//! Why the limits: a report is a number an agent typed. Without them `--tokens-in
//! 18446744073709551615` became -1 in SQLite, two reports of `9223372036854775807` overflowed the
//! column into a REAL, and `--cost-usd 1e308` twice made the spend infinite.

use std::fmt;

/// Most tokens one report may carry (in or out): 10^12, far above any real agent's turn or
/// session.
pub const MAX_REPORT_TOKENS: u64 = 1_000_000_000_000;
/// Most dollars one report may carry.
pub const MAX_REPORT_COST_USD: f64 = 1_000_000.0;
/// Most tokens an attempt's total may reach (in or out): what a signed 64-bit column holds.
pub const MAX_TOTAL_TOKENS: u64 = i64::MAX as u64;
/// Most dollars an attempt's total may reach.
pub const MAX_TOTAL_COST_USD: f64 = 1_000_000_000_000.0;

/// One report, as the agent gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

/// An attempt's spend so far.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

/// Which figure was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    TokensIn,
    TokensOut,
    CostUsd,
}

impl Figure {
    /// As the `orch-tui worker usage` flag names it.
    pub fn flag(self) -> &'static str {
        match self {
            Figure::TokensIn => "--tokens-in",
            Figure::TokensOut => "--tokens-out",
            Figure::CostUsd => "--cost-usd",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum UsageError {
    /// Not a finite, non-negative number in the per-report range.
    OutOfRange { figure: Figure, value: String },
    /// The attempt's total would pass its limit.
    TotalTooLarge { figure: Figure, total: String },
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::OutOfRange { figure, value } => {
                let range = match figure {
                    Figure::CostUsd => format!("a finite number from 0 to {MAX_REPORT_COST_USD}"),
                    _ => format!("a whole number from 0 to {MAX_REPORT_TOKENS}"),
                };
                write!(
                    f,
                    "{} {value} is out of range: one report carries {range}; nothing was recorded",
                    figure.flag()
                )
            }
            UsageError::TotalTooLarge { figure, total } => {
                let limit = match figure {
                    Figure::CostUsd => MAX_TOTAL_COST_USD.to_string(),
                    _ => MAX_TOTAL_TOKENS.to_string(),
                };
                write!(
                    f,
                    "{} would bring this attempt's total to {total}, past its limit of {limit}; \
                     the report is refused and nothing was recorded",
                    figure.flag()
                )
            }
        }
    }
}

impl std::error::Error for UsageError {}

impl Usage {
    /// Every figure finite, non-negative and within one report's range.
    pub fn validate(&self) -> Result<(), UsageError> {
        for (figure, v) in [
            (Figure::TokensIn, self.tokens_in),
            (Figure::TokensOut, self.tokens_out),
        ] {
            if v > MAX_REPORT_TOKENS {
                return Err(UsageError::OutOfRange {
                    figure,
                    value: v.to_string(),
                });
            }
        }
        let c = self.cost_usd;
        // NaN and the infinities fail `is_finite`; -0.0 is a harmless zero.
        if !c.is_finite() || !(0.0..=MAX_REPORT_COST_USD).contains(&c) {
            return Err(UsageError::OutOfRange {
                figure: Figure::CostUsd,
                value: c.to_string(),
            });
        }
        Ok(())
    }
}

impl Totals {
    /// The totals after `report`: validated, never overflowing, never lower than before.
    pub fn record(self, report: &Usage) -> Result<Totals, UsageError> {
        report.validate()?;
        let tokens = |figure, total: u64, add: u64| {
            total
                .checked_add(add)
                .filter(|t| *t <= MAX_TOTAL_TOKENS)
                .ok_or(UsageError::TotalTooLarge {
                    figure,
                    total: (u128::from(total) + u128::from(add)).to_string(),
                })
        };
        let tokens_in = tokens(Figure::TokensIn, self.tokens_in, report.tokens_in)?;
        let tokens_out = tokens(Figure::TokensOut, self.tokens_out, report.tokens_out)?;
        // The report is >= 0, so the total never goes down; `+ 0.0` turns a -0.0 into 0.0.
        let cost_usd = self.cost_usd + report.cost_usd + 0.0;
        if !cost_usd.is_finite() || cost_usd > MAX_TOTAL_COST_USD {
            return Err(UsageError::TotalTooLarge {
                figure: Figure::CostUsd,
                total: cost_usd.to_string(),
            });
        }
        Ok(Totals {
            tokens_in,
            tokens_out,
            cost_usd,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(tokens_in: u64, tokens_out: u64, cost_usd: f64) -> Usage {
        Usage {
            tokens_in,
            tokens_out,
            cost_usd,
        }
    }

    #[test]
    fn the_reports_that_broke_the_ledger_are_refused() {
        let zero = Totals::default();
        for bad in [
            u(u64::MAX, 0, 0.0),
            u(i64::MAX as u64, 0, 0.0),
            u(0, MAX_REPORT_TOKENS + 1, 0.0),
            u(0, 0, 1e308),
            u(0, 0, f64::INFINITY),
            u(0, 0, f64::NAN),
            u(0, 0, -0.01),
        ] {
            let e = zero.record(&bad).unwrap_err();
            assert!(matches!(e, UsageError::OutOfRange { .. }), "{bad:?}: {e}");
            assert!(e.to_string().contains("nothing was recorded"), "{e}");
        }
        let e = zero.record(&u(u64::MAX, 0, 0.0)).unwrap_err().to_string();
        assert!(
            e.contains("--tokens-in 18446744073709551615 is out of range"),
            "{e}"
        );
    }

    #[test]
    fn totals_grow_and_refuse_to_pass_their_limit() {
        let t = Totals::default().record(&u(5, 2, 0.5)).unwrap();
        let t = t.record(&u(1, 0, 0.25)).unwrap();
        assert_eq!(
            t,
            Totals {
                tokens_in: 6,
                tokens_out: 2,
                cost_usd: 0.75
            }
        );
        let near = Totals {
            tokens_in: MAX_TOTAL_TOKENS - 1,
            tokens_out: 0,
            cost_usd: MAX_TOTAL_COST_USD,
        };
        assert_eq!(
            near.record(&u(1, 0, 0.0)).unwrap().tokens_in,
            MAX_TOTAL_TOKENS
        );
        let e = near.record(&u(2, 0, 0.0)).unwrap_err();
        assert!(
            matches!(
                e,
                UsageError::TotalTooLarge {
                    figure: Figure::TokensIn,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("9223372036854775808"), "{e}");
        let e = near.record(&u(0, 0, 1.0)).unwrap_err();
        assert!(
            matches!(
                e,
                UsageError::TotalTooLarge {
                    figure: Figure::CostUsd,
                    ..
                }
            ),
            "{e}"
        );
        let neg_zero = Totals::default().record(&u(0, 0, -0.0)).unwrap();
        assert!(neg_zero.cost_usd >= 0.0 && neg_zero.cost_usd.is_sign_positive());
    }
}
