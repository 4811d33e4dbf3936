//! zlib for SPDY/3 header blocks (RFC 1950/1951), with no compression crate in the tree: an
//! inflater that keeps its window across frames (each frame ends in a sync flush of one zlib
//! stream per direction, and may refer back into earlier frames and the preset dictionary), and
//! a "deflater" that writes stored blocks, which every zlib reader accepts.

/// One direction's zlib stream, inflated frame by frame.
pub struct Inflater {
    /// Output so far (the dictionary first), of which the last 32 KiB can be referred to.
    window: Vec<u8>,
    dict_id: u32,
    header_read: bool,
}

const WINDOW: usize = 32 * 1024;

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order in which a dynamic block lists its code-length code lengths.
const CL_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// Bits of one frame's compressed bytes, least significant first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Result<u32, String> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or("compressed header block ends early")?;
        let b = (byte >> (self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(b))
    }

    fn bits(&mut self, n: u8) -> Result<u32, String> {
        let mut v = 0;
        for i in 0..n {
            v |= self.bit()? << i;
        }
        Ok(v)
    }

    fn align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
    }

    fn done(&self) -> bool {
        self.pos.div_ceil(8) >= self.data.len()
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
    count: [u16; 16],
    symbol: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Huffman {
        let mut count = [0u16; 16];
        for &l in lengths {
            count[usize::from(l)] += 1;
        }
        count[0] = 0;
        let mut offs = [0u16; 16];
        for len in 1..15 {
            offs[len + 1] = offs[len] + count[len];
        }
        let mut symbol = vec![0u16; lengths.len()];
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let o = &mut offs[usize::from(l)];
                symbol[usize::from(*o)] = sym as u16;
                *o += 1;
            }
        }
        Huffman { count, symbol }
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Result<u16, String> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.bit()? as i32;
            let count = i32::from(self.count[len]);
            if code - count < first {
                let at = usize::try_from(index + (code - first)).map_err(|e| e.to_string())?;
                return self
                    .symbol
                    .get(at)
                    .copied()
                    .ok_or_else(|| "bad Huffman code".to_string());
            }
            index += count;
            first += count;
            first <<= 1;
            code <<= 1;
        }
        Err("bad Huffman code".into())
    }
}

impl Inflater {
    /// An inflater whose stream was compressed with the preset dictionary `dict`.
    pub fn new(dict: &[u8]) -> Inflater {
        Inflater {
            window: dict.to_vec(),
            dict_id: adler32(dict),
            header_read: false,
        }
    }

    /// Inflates the next part of the stream: whole deflate blocks, the last ending at a sync
    /// flush (or the final block).
    pub fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, String> {
        let mut bits = Bits {
            data: input,
            pos: 0,
        };
        if !self.header_read {
            let cmf = bits.bits(8)?;
            let flg = bits.bits(8)?;
            if cmf & 0x0f != 8 || (cmf * 256 + flg) % 31 != 0 {
                return Err("not a zlib stream".into());
            }
            if flg & 0x20 != 0 {
                let mut id = 0u32;
                for _ in 0..4 {
                    id = (id << 8) | bits.bits(8)?;
                }
                if id != self.dict_id {
                    return Err(format!(
                        "zlib stream wants dictionary {id:#010x}, ours is {:#010x}",
                        self.dict_id
                    ));
                }
            }
            self.header_read = true;
        }
        let start = self.window.len();
        while !bits.done() {
            let last = bits.bit()? == 1;
            match bits.bits(2)? {
                0 => self.stored(&mut bits)?,
                1 => {
                    let mut lengths = [0u8; 288 + 30];
                    lengths[..144].fill(8);
                    lengths[144..256].fill(9);
                    lengths[256..280].fill(7);
                    lengths[280..288].fill(8);
                    lengths[288..].fill(5);
                    let lit = Huffman::new(&lengths[..288]);
                    let dist = Huffman::new(&lengths[288..]);
                    self.codes(&mut bits, &lit, &dist)?;
                }
                2 => {
                    let (lit, dist) = dynamic(&mut bits)?;
                    self.codes(&mut bits, &lit, &dist)?;
                }
                _ => return Err("invalid deflate block type".into()),
            }
            if last {
                break;
            }
        }
        let out = self.window[start..].to_vec();
        if self.window.len() > 4 * WINDOW {
            self.window.drain(..self.window.len() - WINDOW);
        }
        Ok(out)
    }

    fn stored(&mut self, bits: &mut Bits<'_>) -> Result<(), String> {
        bits.align();
        let len = bits.bits(16)?;
        let nlen = bits.bits(16)?;
        if len != !nlen & 0xffff {
            return Err("stored block length mismatch".into());
        }
        let at = bits.pos / 8;
        let end = at + len as usize;
        let data = input_slice(bits.data, at, end)?;
        self.window.extend_from_slice(data);
        bits.pos = end * 8;
        Ok(())
    }

    fn codes(&mut self, bits: &mut Bits<'_>, lit: &Huffman, dist: &Huffman) -> Result<(), String> {
        loop {
            let sym = usize::from(lit.decode(bits)?);
            match sym {
                0..=255 => self.window.push(sym as u8),
                256 => return Ok(()),
                _ => {
                    let i = sym - 257;
                    let (Some(base), Some(extra)) = (LEN_BASE.get(i), LEN_EXTRA.get(i)) else {
                        return Err("bad length symbol".into());
                    };
                    let len = usize::from(*base) + bits.bits(*extra)? as usize;
                    let d = usize::from(dist.decode(bits)?);
                    let (Some(base), Some(extra)) = (DIST_BASE.get(d), DIST_EXTRA.get(d)) else {
                        return Err("bad distance symbol".into());
                    };
                    let back = usize::from(*base) + bits.bits(*extra)? as usize;
                    if back > self.window.len() {
                        return Err("distance too far back".into());
                    }
                    let from = self.window.len() - back;
                    for k in 0..len {
                        let b = self.window[from + k];
                        self.window.push(b);
                    }
                }
            }
        }
    }
}

fn input_slice(data: &[u8], at: usize, end: usize) -> Result<&[u8], String> {
    data.get(at..end)
        .ok_or_else(|| "stored block ends early".to_string())
}

fn dynamic(bits: &mut Bits<'_>) -> Result<(Huffman, Huffman), String> {
    let nlen = bits.bits(5)? as usize + 257;
    let ndist = bits.bits(5)? as usize + 1;
    let ncode = bits.bits(4)? as usize + 4;
    let mut cl = [0u8; 19];
    for &i in CL_ORDER.iter().take(ncode) {
        cl[i] = bits.bits(3)? as u8;
    }
    let clh = Huffman::new(&cl);
    let mut lengths = Vec::with_capacity(nlen + ndist);
    while lengths.len() < nlen + ndist {
        let sym = clh.decode(bits)?;
        let (value, repeat) = match sym {
            0..=15 => (sym as u8, 1),
            16 => {
                let prev = *lengths.last().ok_or("repeat with no previous length")?;
                (prev, 3 + bits.bits(2)?)
            }
            17 => (0, 3 + bits.bits(3)?),
            _ => (0, 11 + bits.bits(7)?),
        };
        for _ in 0..repeat {
            lengths.push(value);
        }
    }
    if lengths.len() != nlen + ndist {
        return Err("code lengths overrun".into());
    }
    Ok((
        Huffman::new(&lengths[..nlen]),
        Huffman::new(&lengths[nlen..]),
    ))
}

/// One direction's zlib stream written as stored blocks (no compression, no dictionary needed).
#[derive(Default)]
pub struct Deflater {
    header_written: bool,
}

impl Deflater {
    /// The next part of the stream holding `data`, ending in a sync flush.
    pub fn deflate(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 16);
        if !self.header_written {
            // CMF 0x78 (deflate, 32 KiB window), FLG 0x01: no dictionary, check bits valid.
            out.extend_from_slice(&[0x78, 0x01]);
            self.header_written = true;
        }
        for chunk in data.chunks(0xffff) {
            // A chunk is at most 0xffff bytes, so its length fits in 16 bits.
            let len = chunk.len() as u16;
            out.push(0); // not final, stored
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        // The sync flush marker (an empty stored block): Go's flate reader hands out what it
        // has when it meets one, rather than reading on past the end of the frame.
        out.extend_from_slice(&[0, 0, 0, 0xff, 0xff]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn block(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_be_bytes().to_vec();
        for (k, v) in pairs {
            for part in [k, v] {
                out.extend_from_slice(&(part.len() as u32).to_be_bytes());
                out.extend_from_slice(part.as_bytes());
            }
        }
        out
    }

    /// One zlib stream written by zlib itself (Python's, level 9, SPDY/3's dictionary, a sync
    /// flush after each block), as kubectl's header compressor writes them: the first refers
    /// into the dictionary, the second back into the first, the third is a dynamic-Huffman
    /// block. The DICTID in the first bytes, e3c6a7c2, is also what kubectl 1.32 sends.
    #[test]
    fn inflates_zlib_written_header_blocks_with_the_spdy_dictionary() {
        let mut i = Inflater::new(&super::super::spdy::dictionary());
        let first = hex(
            "78f9e3c6a7c202253a48f95b044eeaa626c646e0745752949a980b2d5a585341010f64701641a2311394\
             bc190d00000000ffff",
        );
        assert_eq!(
            i.inflate(&first).unwrap(),
            block(&[
                ("port", "5432"),
                ("streamtype", "error"),
                ("requestid", "0")
            ])
        );
        assert_eq!(
            i.inflate(&hex("224a33a85c4ac4d40b000000ffff")).unwrap(),
            block(&[("port", "5432"), ("streamtype", "data"), ("requestid", "0")])
        );
        let third = hex(
            "acd54b0a83401084e1abf40504bbe6e9715c242048842c428e1f8540b2eaa945addc7da8ddffccffe965\
             bf6fb67d7bdc6cb6e36eabedc7d9f8d3ae3be27cbcd6fd9ac87bfa42d36c21e214d2620414e2319228a4\
             c748a610c448a19025462a85a41869dc8f1dccb8534a8e91857b95c1909d5bda3250b8adf5c19c9ddbdb\
             3a5092a4c3ac08d18ba244af8a14bd295af4ae88d117458d982539c2153d029220911441224b82445104\
             89aa08124d7233764590e0d6b77f000000ffff",
        );
        let text: Vec<String> = (0..30)
            .map(|i| {
                format!(
                    "content-type text/plain line {i} of a longer header value, x-request-{}",
                    i * 7 % 13
                )
            })
            .collect();
        assert_eq!(i.inflate(&third).unwrap(), text.join(" ").into_bytes());
    }

    #[test]
    fn a_stream_for_another_dictionary_is_refused() {
        let mut i = Inflater::new(b"not the SPDY dictionary");
        let err = i
            .inflate(&hex("78f9e3c6a7c202253a48f95b044eeaa6"))
            .unwrap_err();
        assert!(err.contains("dictionary 0xe3c6a7c2"), "{err}");
    }

    #[test]
    fn stored_blocks_round_trip() {
        let mut d = Deflater::default();
        let mut i = Inflater::new(b"dictionary");
        assert_eq!(i.inflate(&d.deflate(b"hello")).unwrap(), b"hello");
        assert_eq!(i.inflate(&d.deflate(b"")).unwrap(), b"");
        assert_eq!(i.inflate(&d.deflate(b"world")).unwrap(), b"world");
    }
}
