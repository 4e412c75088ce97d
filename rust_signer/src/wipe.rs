//! `Wiped<T>`: a heap slot for secret-bearing values of foreign types that offer no `Zeroize` (ring's key
//! pairs and HMAC keys), whose bytes are overwritten with zeros when it is dropped.

use std::mem::ManuallyDrop;
use std::ops::Deref;

pub struct Wiped<T>(Box<ManuallyDrop<T>>);

impl<T> Wiped<T> {
    pub fn new(value: T) -> Self {
        // The wipe replaces the drop: sound only for types with nothing of their own to drop.
        const {
            assert!(
                !std::mem::needs_drop::<T>(),
                "Wiped<T> needs a T without drop glue"
            )
        };
        Self(Box::new(ManuallyDrop::new(value)))
    }
}

impl<T> Deref for Wiped<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Drop for Wiped<T> {
    #[allow(
        unsafe_code,
        reason = "foreign key types expose no zeroize; wipe their bytes in place"
    )]
    fn drop(&mut self) {
        let slot: &mut T = &mut self.0;
        // SAFETY: `slot` is the only reference to a live heap-allocated `T` we own. `T` has no drop glue
        // (asserted in `new`) and sits in a `ManuallyDrop`, so after the wipe nothing reads it as a `T` again:
        // the Box only frees the bytes. All-zero bit patterns that would be invalid for `T` (such as a
        // `&'static` inside ring's types) are therefore never observed.
        unsafe { zeroize::zeroize_flat_type(slot as *mut T) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dereferences_to_the_value() {
        let w = Wiped::new([7u8; 32]);
        assert_eq!(w[31], 7);
    }
}
