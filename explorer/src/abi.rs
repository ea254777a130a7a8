//! The WebAssembly boundary, without a bindings generator: the page copies
//! a request into a buffer from [`acd_alloc`], calls [`acd_call`], reads the
//! answer at the pointer and length it returns, and gives both buffers back
//! with [`acd_free`]. Raw pointers are unavoidable here, and only here.
#![allow(unsafe_code)]

/// A zeroed buffer of exactly `len` bytes for the page to fill.
#[unsafe(no_mangle)]
pub extern "C" fn acd_alloc(len: usize) -> *mut u8 {
    Box::into_raw(vec![0u8; len].into_boxed_slice()).cast::<u8>()
}

/// Frees a buffer of `len` bytes from [`acd_alloc`] or [`acd_call`].
///
/// # Safety
/// `ptr` and `len` must be exactly those of one such buffer, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn acd_free(ptr: *mut u8, len: usize) {
    // SAFETY: the caller passes back a boxed slice we leaked, unchanged.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
}

/// Runs [`crate::call`] on the `len` request bytes at `ptr`; returns the
/// answer's pointer in the high 32 bits and its length in the low 32.
///
/// # Safety
/// `ptr` must point at `len` initialized bytes (a buffer from
/// [`acd_alloc`]).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn acd_call(ptr: *const u8, len: usize) -> u64 {
    // SAFETY: the caller's buffer is `len` bytes it wrote.
    let request = unsafe { std::slice::from_raw_parts(ptr, len) };
    let answer = crate::call(request).into_boxed_slice();
    let n = answer.len() as u64;
    let p = Box::into_raw(answer).cast::<u8>() as usize as u64;
    (p << 32) | n
}
