//! Which packets a link loses on entry: none, each at random (`5%`), or in bursts by the
//! Gilbert-Elliott model (`ge:P,R[,BAD[,GOOD]]`: the chance per packet of going from the good
//! state to the bad one and back, and the loss in each state, 100 % and 0 % by default).

use crate::Error;
use crate::units::fraction;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Loss {
    #[default]
    None,
    Random(f64),
    GilbertElliott {
        to_bad: f64,
        to_good: f64,
        in_bad: f64,
        in_good: f64,
    },
}

impl Loss {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let Some(params) = text.strip_prefix("ge:") else {
            return match fraction(text)? {
                0.0 => Ok(Self::None),
                p => Ok(Self::Random(p)),
            };
        };
        let values: Vec<f64> = params.split(',').map(fraction).collect::<Result<_, _>>()?;
        let [to_bad, to_good, ref rest @ ..] = values[..] else {
            return Err(Error::spec(text, "ge: needs P,R (e.g. ge:1%,30%)"));
        };
        if rest.len() > 2 || to_good == 0.0 {
            return Err(Error::spec(
                text,
                "ge:P,R[,LOSS_IN_BAD[,LOSS_IN_GOOD]] with R above 0 (or the link never recovers)",
            ));
        }
        Ok(Self::GilbertElliott {
            to_bad,
            to_good,
            in_bad: rest.first().copied().unwrap_or(1.0),
            in_good: rest.get(1).copied().unwrap_or(0.0),
        })
    }

    /// The long-run share of packets lost.
    pub fn mean(&self) -> f64 {
        match *self {
            Self::None => 0.0,
            Self::Random(p) => p,
            Self::GilbertElliott {
                to_bad,
                to_good,
                in_bad,
                in_good,
            } => {
                let bad = to_bad / (to_bad + to_good);
                bad * in_bad + (1.0 - bad) * in_good
            }
        }
    }
}

/// A loss model's state as packets go by.
#[derive(Clone, Debug)]
pub struct Dropper {
    loss: Loss,
    bad: bool,
}

impl Dropper {
    pub fn new(loss: Loss) -> Self {
        Self { loss, bad: false }
    }

    /// Whether the next packet is lost.
    pub fn lose(&mut self, rng: &mut fastrand::Rng) -> bool {
        match self.loss {
            Loss::None => false,
            Loss::Random(p) => rng.f64() < p,
            Loss::GilbertElliott {
                to_bad,
                to_good,
                in_bad,
                in_good,
            } => {
                let flip = if self.bad { to_good } else { to_bad };
                if rng.f64() < flip {
                    self.bad = !self.bad;
                }
                rng.f64() < if self.bad { in_bad } else { in_good }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(loss: Loss, n: usize) -> (f64, usize) {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut dropper = Dropper::new(loss);
        let lost: Vec<bool> = (0..n).map(|_| dropper.lose(&mut rng)).collect();
        let longest = lost.split(|l| !l).map(<[bool]>::len).max().unwrap_or(0);
        (
            lost.iter().filter(|l| **l).count() as f64 / n as f64,
            longest,
        )
    }

    #[test]
    fn random_loss_loses_its_share() {
        let (p, _) = share(Loss::parse("5%").unwrap(), 100_000);
        assert!((0.045..0.055).contains(&p), "{p}");
        assert_eq!(share(Loss::parse("0%").unwrap(), 1000).0, 0.0);
    }

    #[test]
    fn gilbert_elliott_loses_in_bursts() {
        let loss = Loss::parse("ge:1%,25%").unwrap();
        // 1/26 of the time bad, losing all there.
        assert!((loss.mean() - 1.0 / 26.0).abs() < 1e-9);
        let (p, burst) = share(loss, 200_000);
        assert!((0.03..0.047).contains(&p), "{p}");
        // Random loss at the same share would hardly ever lose 10 in a row.
        assert!(burst >= 10, "{burst}");
        let (_, random_burst) = share(Loss::Random(p), 200_000);
        assert!(random_burst < burst, "{random_burst} vs {burst}");
    }

    #[test]
    fn bad_loss_specs_are_refused() {
        for bad in ["ge:1%", "ge:1%,0%", "ge:1%,2%,3%,4%,5%", "200%", "lots"] {
            assert!(Loss::parse(bad).is_err(), "{bad} was taken");
        }
    }
}
