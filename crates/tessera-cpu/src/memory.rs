//! Memory hints for large host state.

/// Bytes of a transparent huge page on x86-64 and most AArch64 Linux kernels.
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// `MADV_COLLAPSE` (Linux 6.1+): turn the range's pages into huge pages now.
#[cfg(target_os = "linux")]
const MADV_COLLAPSE: libc::c_int = 25;

/// Asks Linux to back the whole huge pages inside `data` by transparent huge pages,
/// now and when they fault in later. A hint: a kernel that refuses (THP off, older
/// than 6.1, no free huge pages) leaves the memory as it was, and results never
/// depend on it. Spans shorter than a huge page are left alone.
///
/// State that is touched at scattered rows every step (an acquisition batch's rings,
/// gigabytes across thousands of environments) otherwise pays a TLB miss and a page
/// walk per row.
pub(crate) fn prefer_huge_pages<T>(data: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        let start = data.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(data);
        let first = start.next_multiple_of(HUGE_PAGE);
        let last = end / HUGE_PAGE * HUGE_PAGE;
        if last <= first {
            return;
        }
        let (addr, len) = (first as *mut libc::c_void, last - first);
        // SAFETY: the range lies inside `data`, which is borrowed mutably, and these
        // advices change only how the kernel backs the pages, never their contents.
        unsafe {
            libc::madvise(addr, len, libc::MADV_HUGEPAGE);
            libc::madvise(addr, len, MADV_COLLAPSE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = data;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hint keeps every value, on spans larger and smaller than a huge page.
    #[test]
    fn advice_keeps_contents() {
        for len in [0usize, 1, 1000, 3 << 20] {
            let mut data: Vec<u32> = (0..len as u32).collect();
            prefer_huge_pages(&mut data);
            assert!(data.iter().enumerate().all(|(i, &v)| v == i as u32));
        }
    }
}
