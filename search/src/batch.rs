//! Batching of a token stream for truncated back-propagation through time (BPTT).
//!
//! A split of `n` tokens becomes `batch_size` columns that are read in parallel, one row per
//! time step. Column `j` continues the text where column `j - 1` stops, so the hidden state of
//! each column can be carried from one window to the next.

/// Batching parameters that cannot produce a single window.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("batch size is 0; use a batch size of at least 1")]
    ZeroBatchSize,

    #[error("BPTT length is 0; use a BPTT length of at least 1")]
    ZeroBptt,

    #[error(
        "split has {tokens} tokens, but a batch size of {batch_size} needs at least {} \
         (one input and one target per column); lower the batch size or use a longer split",
        batch_size.saturating_add(1)
    )]
    TooShort { tokens: usize, batch_size: usize },
}

/// A split laid out as `batch_size` contiguous columns, time-major.
///
/// `data()` is a row-major matrix of shape `[steps + 1, batch_size]` whose column `j` contains
/// `ids[j * steps ..= (j + 1) * steps]`. Rows `0..steps` are inputs and rows `1..=steps` are
/// their targets. Neighboring columns share one token: the last target of column `j` is the
/// first input of column `j + 1`. This layout needs only `batch_size + 1` tokens, and every
/// token from `ids[1]` to `ids[steps * batch_size]` is a target exactly once.
///
/// `steps = (n - 1) / batch_size`, so the last `(n - 1) % batch_size` tokens are dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batched {
    data: Vec<i64>,
    steps: usize,
    batch_size: usize,
    dropped: usize,
}

impl Batched {
    /// Lays `ids` out in `batch_size` columns, dropping the tokens that do not fill a row.
    pub fn new(ids: &[i64], batch_size: usize) -> Result<Batched, BatchError> {
        if batch_size == 0 {
            return Err(BatchError::ZeroBatchSize);
        }
        if ids.len() <= batch_size {
            return Err(BatchError::TooShort {
                tokens: ids.len(),
                batch_size,
            });
        }

        let steps = (ids.len() - 1) / batch_size;
        let dropped = ids.len() - (steps * batch_size + 1);
        let mut data = Vec::with_capacity((steps + 1) * batch_size);
        for row in 0..=steps {
            for column in 0..batch_size {
                data.push(ids[column * steps + row]);
            }
        }
        Ok(Batched {
            data,
            steps,
            batch_size,
            dropped,
        })
    }

    /// Row-major matrix of shape `[steps + 1, batch_size]`, laid out as the type documentation
    /// describes.
    pub fn data(&self) -> &[i64] {
        &self.data
    }

    /// Number of input time steps in each column.
    pub fn steps(&self) -> usize {
        self.steps
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Number of tokens at the end of the split that no column contains.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Number of target tokens over all windows, the denominator of the perplexity.
    pub fn num_target_tokens(&self) -> usize {
        self.steps * self.batch_size
    }

    /// Cuts the columns into windows of `bptt` time steps. The last window may be shorter.
    pub fn windows(&self, bptt: usize) -> Result<Windows<'_>, BatchError> {
        if bptt == 0 {
            return Err(BatchError::ZeroBptt);
        }
        Ok(Windows {
            batched: self,
            bptt,
        })
    }
}

/// One BPTT window: `input` and `target` are row-major `[steps, batch_size]` matrices, and
/// `target` is `input` shifted by one time step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window<'a> {
    pub input: &'a [i64],
    pub target: &'a [i64],
    pub steps: usize,
    pub batch_size: usize,
}

impl Window<'_> {
    /// `[steps, batch_size]`, the shape of both `input` and `target`.
    pub fn shape(&self) -> [usize; 2] {
        [self.steps, self.batch_size]
    }
}

/// The BPTT windows of a `Batched` split, with random access by index.
#[derive(Clone, Copy, Debug)]
pub struct Windows<'a> {
    batched: &'a Batched,
    bptt: usize,
}

impl<'a> Windows<'a> {
    pub fn bptt(&self) -> usize {
        self.bptt
    }

    pub fn num_windows(&self) -> usize {
        self.batched.steps.div_ceil(self.bptt)
    }

    /// Number of target tokens over all windows, the same as `Batched::num_target_tokens`.
    pub fn num_target_tokens(&self) -> usize {
        self.batched.num_target_tokens()
    }

    /// Window `index` covers input steps `index * bptt` up to `(index + 1) * bptt` or the
    /// last step. Returns `None` when `index >= num_windows()`.
    pub fn window(&self, index: usize) -> Option<Window<'a>> {
        if index >= self.num_windows() {
            return None;
        }
        let batch_size = self.batched.batch_size;
        let start = index * self.bptt;
        let steps = self.bptt.min(self.batched.steps - start);
        let data = &self.batched.data;
        Some(Window {
            input: &data[start * batch_size..(start + steps) * batch_size],
            target: &data[(start + 1) * batch_size..(start + 1 + steps) * batch_size],
            steps,
            batch_size,
        })
    }

    /// Iterates over all windows in order.
    pub fn iter(&self) -> WindowIter<'a> {
        self.iter_from(0)
    }

    /// Iterates over the windows from `index` on. The iterator is empty when
    /// `index >= num_windows()`.
    pub fn iter_from(&self, index: usize) -> WindowIter<'a> {
        WindowIter {
            windows: *self,
            next: index.min(self.num_windows()),
        }
    }
}

impl<'a> IntoIterator for Windows<'a> {
    type Item = Window<'a>;
    type IntoIter = WindowIter<'a>;

    fn into_iter(self) -> WindowIter<'a> {
        self.iter()
    }
}

/// Iterator over `Windows`, created by `Windows::iter` and `Windows::iter_from`.
#[derive(Clone, Debug)]
pub struct WindowIter<'a> {
    windows: Windows<'a>,
    next: usize,
}

impl<'a> Iterator for WindowIter<'a> {
    type Item = Window<'a>;

    fn next(&mut self) -> Option<Window<'a>> {
        let window = self.windows.window(self.next)?;
        self.next += 1;
        Some(window)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.windows.num_windows() - self.next;
        (remaining, Some(remaining))
    }

    fn nth(&mut self, n: usize) -> Option<Window<'a>> {
        self.next = self.next.saturating_add(n).min(self.windows.num_windows());
        self.next()
    }
}

impl ExactSizeIterator for WindowIter<'_> {}
