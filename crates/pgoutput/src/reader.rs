//! Bounds-checked cursor over a message buffer.

use bytes::Bytes;

use crate::DecodeError;

/// Cursor that reads big-endian integers, NUL-terminated strings and byte
/// slices from a buffer. Every read checks the remaining length first and
/// returns [`DecodeError::UnexpectedEnd`] when it is too short.
pub(crate) struct Reader<'a> {
    data: &'a Bytes,
    /// Offset of the next unread byte, never past `data.len()`.
    position: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a Bytes) -> Self {
        Reader { data, position: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn remaining(&self) -> usize {
        self.unread().len()
    }

    fn unread(&self) -> &'a [u8] {
        let data: &'a [u8] = self.data;
        data.get(self.position..).unwrap_or_default()
    }

    fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let at = self.position;
        let array = self
            .unread()
            .first_chunk::<N>()
            .ok_or(DecodeError::UnexpectedEnd { needed: N, at })?;
        self.position += N;
        Ok(*array)
    }

    pub(crate) fn read_u8(&mut self) -> Result<u8, DecodeError> {
        let [byte] = self.read_array::<1>()?;
        Ok(byte)
    }

    pub(crate) fn read_u16(&mut self) -> Result<u16, DecodeError> {
        self.read_array().map(u16::from_be_bytes)
    }

    pub(crate) fn read_u32(&mut self) -> Result<u32, DecodeError> {
        self.read_array().map(u32::from_be_bytes)
    }

    pub(crate) fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.read_array().map(i32::from_be_bytes)
    }

    pub(crate) fn read_u64(&mut self) -> Result<u64, DecodeError> {
        self.read_array().map(u64::from_be_bytes)
    }

    pub(crate) fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.read_array().map(i64::from_be_bytes)
    }

    /// Reads `len` bytes as a slice that shares the input buffer.
    pub(crate) fn read_bytes(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        let at = self.position;
        if len > self.remaining() {
            return Err(DecodeError::UnexpectedEnd { needed: len, at });
        }
        self.position += len;
        Ok(self.data.slice(at..self.position))
    }

    /// Reads an Int32 length followed by that many bytes. A negative length
    /// reads as a large unsigned one, so it fails as [`DecodeError::UnexpectedEnd`].
    pub(crate) fn read_length_prefixed_bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.read_u32()?;
        // On targets where usize is narrower than u32, a length that does not
        // fit cannot fit in the buffer either.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.read_bytes(len)
    }

    /// Reads a NUL-terminated UTF-8 string and consumes its terminator.
    pub(crate) fn read_string(&mut self) -> Result<String, DecodeError> {
        let at = self.position;
        let unread = self.unread();
        let Some(nul) = unread.iter().position(|&byte| byte == 0) else {
            return Err(DecodeError::UnexpectedEnd {
                needed: unread.len() + 1,
                at,
            });
        };
        let text =
            std::str::from_utf8(&unread[..nul]).map_err(|_| DecodeError::InvalidUtf8 { at })?;
        self.position += nul + 1;
        Ok(text.to_owned())
    }

    /// Checks that the whole buffer was read.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.remaining() > 0 {
            return Err(DecodeError::TrailingBytes { at: self.position });
        }
        Ok(())
    }
}
