//! cli

pub fn main() -> i32 {
    0
}
pub mod load;
