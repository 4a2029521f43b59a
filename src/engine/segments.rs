//! The byte-range plan of a download split over several connections: who
//! fetches which range, how far each has got, work stealing, and the
//! contiguous prefix that is ready to hash.
//!
//! Pure bookkeeping behind one lock; no I/O. Slots are never removed, so a
//! connection's slot index stays valid while others split ranges.

use crate::store::manifest::Segment;

/// Near the end of a file, ranges read with bounded requests may be cut in
/// pieces down to `min_piece / TAIL_SHARE`.
const TAIL_SHARE: u64 = 4;

/// Longest request of a split download: long enough that a request's round
/// trip is noise, short enough that the rest of a range stays stealable,
/// and, since thieves take the bytes right after the last request asked
/// for, the most the hashed prefix trails the download per connection.
pub const MAX_REQUEST: u64 = 16 << 20;

/// A range of the plan and who works on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    seg: Segment,
    /// Bytes from `start` received by the owner (some may still sit in its
    /// buffer); never less than `seg.written`.
    received: u64,
    owner: Option<usize>,
    /// End of the owner's request in flight; None for an open-ended answer,
    /// which may be cut anywhere. A thief never takes bytes already asked
    /// for: the server would send them twice.
    asked: Option<u64>,
}

impl Slot {
    fn len(&self) -> u64 {
        self.seg.end - self.seg.start
    }

    fn remaining(&self) -> u64 {
        self.len() - self.received
    }
}

/// The ranges of one file.
#[derive(Debug, Clone)]
pub struct Plan {
    slots: Vec<Slot>,
    total: u64,
    /// No range is split into pieces smaller than this.
    min_piece: u64,
}

/// Where a connection should fetch: `[from, end)` for slot `slot`; `end`
/// may shrink later if another connection steals the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub slot: usize,
    /// Where the slot's range starts (its `written` counts from here).
    pub start: u64,
    pub from: u64,
    pub end: u64,
}

impl Plan {
    /// A fresh plan: one range covering the whole file, for the connection
    /// that is already receiving it. Others join by stealing.
    pub fn new(total: u64, min_piece: u64) -> Plan {
        Plan {
            slots: vec![Slot {
                seg: Segment {
                    start: 0,
                    end: total,
                    written: 0,
                    synced: 0,
                },
                received: 0,
                owner: None,
                asked: None,
            }],
            total,
            min_piece: min_piece.max(1),
        }
    }

    /// The first answer was asked bounded, to `end`: thieves keep off its
    /// bytes (None: it runs open-ended, and may be cut anywhere).
    pub fn first_asked(mut self, end: Option<u64>) -> Plan {
        self.slots[0].asked = end;
        self
    }

    /// A plan resumed from the manifest. `trust_written`: the machine has
    /// not rebooted since, so bytes handed to the kernel are on disk; else
    /// only synced bytes count. None if the ranges do not tile `[0, total)`.
    pub fn resume(
        segments: &[Segment],
        total: u64,
        min_piece: u64,
        trust_written: bool,
    ) -> Option<Plan> {
        let mut segs = segments.to_vec();
        segs.sort_by_key(|s| s.start);
        let mut at = 0;
        for seg in &segs {
            if seg.start != at || seg.end < seg.start || seg.written > seg.end - seg.start {
                return None;
            }
            at = seg.end;
        }
        if at != total {
            return None;
        }
        let slots = segs
            .into_iter()
            .map(|mut seg| {
                seg.synced = seg.synced.min(seg.written);
                if !trust_written {
                    seg.written = seg.synced;
                }
                Slot {
                    seg,
                    received: seg.written,
                    owner: None,
                    asked: None,
                }
            })
            .collect();
        Some(Plan {
            slots,
            total,
            min_piece: min_piece.max(1),
        })
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Hands `conn` the first range nobody works on, else the bytes after
    /// the request in flight nearest the front, else part of a range still
    /// being fetched. None when nothing is left worth another connection.
    pub fn claim(&mut self, conn: usize) -> Option<Claim> {
        if let Some(slot) = self
            .slots
            .iter()
            .position(|s| s.owner.is_none() && s.remaining() > 0)
        {
            return Some(self.take(slot, conn));
        }
        self.steal(conn)
    }

    /// Claims a specific slot (the first connection owns slot 0 of a fresh
    /// plan, with what its answer was asked for). A free slot has no
    /// request in flight: `release` forgot it.
    pub fn take(&mut self, slot: usize, conn: usize) -> Claim {
        let s = &mut self.slots[slot];
        s.owner = Some(conn);
        // Whatever was received but not written is gone with the old owner.
        s.received = s.seg.written;
        Claim {
            slot,
            start: s.seg.start,
            from: s.seg.start + s.seg.written,
            end: s.seg.end,
        }
    }

    fn steal(&mut self, conn: usize) -> Option<Claim> {
        let (victim, mid) = self
            .next_in_order()
            .or_else(|| self.best_cut(self.min_piece, false))
            .or_else(|| self.best_cut(self.tail_piece(), true))?;
        let end = self.slots[victim].seg.end;
        self.slots[victim].seg.end = mid;
        self.slots.push(Slot {
            seg: Segment {
                start: mid,
                end,
                written: 0,
                synced: 0,
            },
            received: 0,
            owner: Some(conn),
            asked: None,
        });
        let slot = self.slots.len() - 1;
        // Its first request is asked for now, so that the next thief,
        // which may come before this connection sends it, takes the bytes
        // after it.
        self.next_request(slot, MAX_REQUEST);
        Some(Claim {
            slot,
            start: mid,
            from: mid,
            end,
        })
    }

    /// The first bytes of the file that no request asks for yet, as a cut
    /// right after a bounded request in flight that leaves a piece on both
    /// sides. Connections that take work in file order keep the written
    /// prefix, which is all the sha256 can read, close behind the download:
    /// cut at the middle of the largest ranges instead, 8 connections grow
    /// it at an eighth of their speed, and 7/8 of the file waited to be
    /// hashed after its last byte came (0.4 s of 3.7 on 512 MiB over 8
    /// paced connections).
    fn next_in_order(&self) -> Option<(usize, u64)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.owner.is_some())
            .filter_map(|(i, s)| {
                let cut = (s.asked?.max(s.seg.start + s.received) + 0xffff) & !0xffff;
                (cut + self.min_piece <= s.seg.end).then_some((i, cut))
            })
            .min_by_key(|&(_, cut)| cut)
    }

    /// The running range to cut, and where, that leaves a thief the most:
    /// each is cut at the middle of what is left, rounded down to 64 KiB so
    /// ranges stay aligned for the page cache, but never below what its
    /// owner already asked for (the server would send those bytes twice),
    /// and only if both sides keep `piece` bytes. The largest range is not
    /// always the one to cut: most of it may be asked for already. With
    /// `bounded_only`, ranges still read from an open-ended answer are left
    /// alone, since cutting one makes the server send what its socket
    /// buffers hold past the cut for nothing.
    fn best_cut(&self, piece: u64, bounded_only: bool) -> Option<(usize, u64)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.owner.is_some() && !(bounded_only && s.asked.is_none()))
            .filter_map(|(i, s)| {
                let pos = s.seg.start + s.received;
                let half = (pos + s.remaining() / 2) & !0xffff;
                let mid = half.max(s.asked.unwrap_or(0));
                let fits = mid >= pos + piece && mid + piece <= s.seg.end;
                fits.then_some((i, mid, s.seg.end - mid))
            })
            .max_by_key(|&(_, _, size)| size)
            .map(|(i, mid, _)| (i, mid))
    }

    /// The smallest piece cut off a range near the end of the file, when
    /// nothing is left to cut in `min_piece`s: idle connections take the
    /// last bytes in these rather than wait for the busy ones to finish.
    fn tail_piece(&self) -> u64 {
        (self.min_piece / TAIL_SHARE).max(1)
    }

    /// The owner's next request: from its position to the returned end. Half
    /// of what is left (between `min_piece` and `max_request`; near the end,
    /// down to the tail piece), so the other half stays free to steal and no
    /// connection holds a long tail while others idle.
    pub fn next_request(&mut self, slot: usize, max_request: u64) -> Option<u64> {
        let (min_piece, tail_piece) = (self.min_piece, self.tail_piece());
        let s = &mut self.slots[slot];
        let left = s.remaining();
        if left == 0 {
            return None;
        }
        let size = if left <= 2 * tail_piece {
            left
        } else if left <= 2 * min_piece {
            left / 2
        } else {
            (left / 2).clamp(min_piece, max_request.max(min_piece))
        };
        let end = s.seg.start + s.received + size;
        s.asked = Some(end);
        Some(end)
    }

    /// The owner got `len` more bytes at its position: returns how many of
    /// them fall inside its range (the end may have moved since it asked).
    pub fn receive(&mut self, slot: usize, len: u64) -> u64 {
        let s = &mut self.slots[slot];
        let take = len.min(s.remaining());
        s.received += take;
        take
    }

    /// The owner handed bytes up to `start + written` to the kernel.
    pub fn written(&mut self, slot: usize, written: u64) {
        let s = &mut self.slots[slot];
        s.seg.written = written.min(s.len());
    }

    /// The owner synced everything it had written.
    pub fn synced(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        s.seg.synced = s.seg.written;
    }

    /// Everything written is now synced (after an fsync of the whole file).
    pub fn sync_all(&mut self) {
        for s in &mut self.slots {
            s.seg.synced = s.seg.written;
        }
    }

    /// The owner stopped (error, cancel, done); its range is free to claim.
    pub fn release(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        s.owner = None;
        s.received = s.seg.written;
        s.asked = None;
    }

    /// Absolute offset where the owner of `slot` continues.
    pub fn position(&self, slot: usize) -> u64 {
        let s = &self.slots[slot];
        s.seg.start + s.received
    }

    /// End of the owner's request in flight, if it asked for a bounded range.
    pub fn asked(&self, slot: usize) -> Option<u64> {
        self.slots[slot].asked
    }

    /// True when the range of `slot` is fully received.
    pub fn slot_done(&self, slot: usize) -> bool {
        self.slots[slot].remaining() == 0
    }

    /// Every byte written.
    pub fn is_complete(&self) -> bool {
        self.slots.iter().all(|s| s.seg.written == s.len())
    }

    /// Bytes from 0 that are written without a gap: what can be hashed.
    pub fn frontier(&self) -> u64 {
        let mut order: Vec<&Slot> = self.slots.iter().collect();
        order.sort_by_key(|s| s.seg.start);
        let mut at = 0;
        for s in order {
            if s.seg.start != at {
                break;
            }
            at = s.seg.start + s.seg.written;
            if s.seg.written < s.len() {
                break;
            }
        }
        at
    }

    /// Sum of written bytes (the job's position for progress).
    pub fn written_total(&self) -> u64 {
        self.slots.iter().map(|s| s.seg.written).sum()
    }

    /// Sum of synced bytes.
    pub fn synced_total(&self) -> u64 {
        self.slots.iter().map(|s| s.seg.synced).sum()
    }

    /// The ranges as the manifest stores them, in file order; empty ranges
    /// left by stealing at the very end are dropped.
    ///
    /// A range written whole is merged with the one after it: in file order
    /// every thief adds a range per request (a 100 GiB file, thousands), and
    /// the record saved at each checkpoint would grow with them, while what a
    /// resume needs is where the writing stopped.
    pub fn segments(&self) -> Vec<Segment> {
        let mut segs: Vec<Segment> = self
            .slots
            .iter()
            .map(|s| s.seg)
            .filter(|s| s.end > s.start)
            .collect();
        segs.sort_by_key(|s| s.start);
        let mut merged: Vec<Segment> = Vec::with_capacity(segs.len());
        for seg in segs {
            match merged.last_mut() {
                Some(last) if last.written == last.end - last.start && last.end == seg.start => {
                    let len = last.end - last.start;
                    if last.synced == len {
                        last.synced = len + seg.synced;
                    }
                    last.written = len + seg.written;
                    last.end = seg.end;
                }
                _ => merged.push(seg),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;

    #[test]
    fn connections_join_by_stealing_halves() {
        let mut plan = Plan::new(64 * MIB, MIB);
        let first = plan.take(0, 0);
        assert_eq!((first.from, first.end), (0, 64 * MIB));
        let second = plan.claim(1).expect("steal");
        assert_eq!((second.from, second.end), (32 * MIB, 64 * MIB));
        let third = plan.claim(2).expect("steal");
        // Both halves are as large; the last one found is split.
        assert_eq!((third.from, third.end), (48 * MIB, 64 * MIB));
        assert_eq!(plan.segments().len(), 3);
        assert_eq!(
            plan.receive(0, 40 * MIB),
            32 * MIB,
            "the first range shrank to 32 MiB"
        );
        assert!(plan.slot_done(0));
    }

    #[test]
    fn a_finished_connection_steals_from_the_slowest() {
        let mut plan = Plan::new(8 * MIB, MIB);
        plan.take(0, 0);
        let b = plan.claim(1).expect("steal");
        assert_eq!(b.from, 4 * MIB);
        plan.receive(b.slot, 4 * MIB);
        plan.written(b.slot, 4 * MIB);
        plan.release(b.slot);
        plan.receive(0, 512 << 10);
        // Slot 0 has 3.5 MiB left: the idle connection takes the back half.
        let c = plan.claim(1).expect("steal again");
        assert_eq!(c.end, 4 * MIB);
        assert!(c.from >= (512 << 10) + MIB && c.from.is_multiple_of(65536));
    }

    #[test]
    fn a_thief_never_takes_bytes_already_asked_for() {
        let mut plan = Plan::new(64 * MIB, MIB);
        plan.take(0, 0);
        let b = plan.claim(1).expect("steal");
        assert_eq!(b.from, 32 * MIB);
        // Half of what is left, capped at 8 MiB.
        assert_eq!(plan.next_request(b.slot, 8 * MIB), Some(40 * MIB));
        // Slot 0 (open-ended) is as large, so make it the smaller one.
        plan.receive(0, 8 * MIB);
        let c = plan.claim(2).expect("steal");
        assert_eq!(
            (c.from, c.end),
            (40 * MIB, 64 * MIB),
            "cut right after the asked 40 MiB"
        );
        let mut tail = Plan::new(4 * MIB, MIB);
        tail.take(0, 0);
        assert_eq!(tail.next_request(0, 8 * MIB), Some(2 * MIB));
        assert_eq!(tail.claim(1).map(|c| c.from), Some(2 * MIB));
    }

    #[test]
    fn a_thief_cuts_another_range_when_the_largest_is_all_asked_for() {
        let mut plan = Plan::new(64 * MIB, MIB);
        plan.take(0, 0);
        let b = plan.claim(1).expect("steal");
        assert_eq!(plan.next_request(b.slot, 16 * MIB), Some(48 * MIB));
        let c = plan.claim(2).expect("steal");
        assert_eq!((c.from, c.end), (48 * MIB, 64 * MIB), "cut where b asked");
        plan.receive(0, 17 * MIB);
        plan.receive(c.slot, MIB);
        // b's [32, 48) is now the largest range, but all of it is asked
        // for: the next thief takes what follows c's first request, which
        // asked for half of c's 16 MiB when c stole them.
        let d = plan.claim(3).expect("a range with bytes nobody asked for");
        assert_eq!((d.from, d.end), (56 * MIB, 64 * MIB));
        assert!(d.from >= 49 * MIB || d.end <= 32 * MIB, "{d:?}");
    }

    #[test]
    fn near_the_end_idle_connections_take_tail_pieces_of_bounded_requests() {
        let mut plan = Plan::new(4 * MIB, MIB);
        plan.take(0, 0);
        let b = plan.claim(1).expect("steal");
        assert_eq!((b.from, b.end), (2 * MIB, 4 * MIB));
        // With 2 MiB left, the owner asks for half, not all of it.
        assert_eq!(plan.next_request(0, 16 * MIB), Some(MIB));
        plan.receive(0, MIB);
        plan.receive(b.slot, 2 * MIB);
        // The owner's next request takes half of the 1 MiB left.
        assert_eq!(plan.next_request(0, 16 * MIB), Some(3 * MIB / 2));
        // 1 MiB left: too little for two 1 MiB pieces, but the bytes past
        // the owner's request go to an idle connection.
        let c = plan.claim(2).expect("a tail piece");
        assert_eq!((c.from, c.end), (3 * MIB / 2, 2 * MIB));
        // The last 2 x 256 KiB are asked for in one go.
        assert_eq!(plan.next_request(c.slot, 16 * MIB), Some(2 * MIB));
        let mut longer = Plan::new(4 * MIB, MIB);
        longer.take(0, 0);
        let b = longer.claim(1).expect("steal");
        longer.receive(b.slot, 2 * MIB);
        assert_eq!(longer.next_request(0, 16 * MIB), Some(MIB));
        longer.receive(0, 3 * MIB / 4);
        assert_eq!(longer.next_request(0, 16 * MIB), Some(MIB + 3 * MIB / 8));
        // 1.25 MiB left, half of it asked: the idle connection takes the
        // 5/8 MiB past the request, though it is less than a 1 MiB piece.
        let c = longer.claim(2).expect("a tail piece");
        assert_eq!((c.from, c.end), (MIB + 3 * MIB / 8, 2 * MIB));
        assert_eq!(
            longer.next_request(c.slot, 16 * MIB),
            Some(MIB + 3 * MIB / 8 + 320 * KIB)
        );
    }

    #[test]
    fn thieves_take_the_bytes_after_the_last_request_in_file_order() {
        let mut plan = Plan::new(512 * MIB, MIB).first_asked(Some(2 * MIB));
        plan.take(0, 0);
        let froms: Vec<u64> = (1..8)
            .map(|conn| plan.claim(conn).expect("steal").from)
            .collect();
        // Each thief asks for MAX_REQUEST at once, and the next one starts
        // where that ends: the connections work side by side near the front.
        let expected: Vec<u64> = (0..7).map(|k| 2 * MIB + k * MAX_REQUEST).collect();
        assert_eq!(froms, expected);
        // The first connection is done with its front: it goes on after
        // the last request asked for, not in the middle of the rest.
        plan.receive(0, 2 * MIB);
        plan.written(0, 2 * MIB);
        let next = plan.claim(0).expect("more work");
        assert_eq!(next.from, 2 * MIB + 7 * MAX_REQUEST);
        assert_eq!(next.end, 512 * MIB);
        // The record keeps a range written whole merged with the next one.
        plan.receive(1, MAX_REQUEST);
        plan.written(1, MAX_REQUEST);
        plan.synced(1);
        plan.receive(2, MIB);
        plan.written(2, MIB);
        let segs = plan.segments();
        assert_eq!(segs.len(), 7, "{segs:?}");
        let expected = Segment {
            start: 0,
            end: 2 * MIB + 2 * MAX_REQUEST,
            written: 2 * MIB + MAX_REQUEST + MIB,
            synced: 0,
        };
        assert_eq!(segs[0], expected);
        let written: u64 = segs.iter().map(|s| s.written).sum();
        assert_eq!(written, plan.written_total());
    }

    #[test]
    fn ranges_smaller_than_two_pieces_are_not_split() {
        let mut plan = Plan::new(3 * MIB / 2, MIB);
        plan.take(0, 0);
        assert_eq!(plan.claim(1), None);
    }

    #[test]
    fn frontier_follows_the_contiguous_written_prefix() {
        let mut plan = Plan::new(8 * MIB, MIB);
        plan.take(0, 0);
        let b = plan.claim(1).expect("steal");
        plan.receive(b.slot, MIB);
        plan.written(b.slot, MIB);
        assert_eq!(plan.frontier(), 0);
        plan.receive(0, 4 * MIB);
        plan.written(0, 4 * MIB);
        assert_eq!(plan.frontier(), 5 * MIB);
        assert!(!plan.is_complete());
        plan.receive(b.slot, 3 * MIB);
        plan.written(b.slot, 4 * MIB);
        assert_eq!(plan.frontier(), 8 * MIB);
        assert!(plan.is_complete());
    }

    #[test]
    fn resume_trusts_written_bytes_only_within_the_same_boot() {
        let segs = [
            Segment {
                start: 0,
                end: 4 * MIB,
                written: 3 * MIB,
                synced: MIB,
            },
            Segment {
                start: 4 * MIB,
                end: 8 * MIB,
                written: 2 * MIB,
                synced: 2 * MIB,
            },
        ];
        let same = Plan::resume(&segs, 8 * MIB, MIB, true).expect("tiles");
        assert_eq!(same.written_total(), 5 * MIB);
        let rebooted = Plan::resume(&segs, 8 * MIB, MIB, false).expect("tiles");
        assert_eq!(rebooted.written_total(), 3 * MIB);
        let mut plan = same;
        let c = plan.claim(0).expect("a free range");
        assert_eq!((c.from, c.end), (3 * MIB, 4 * MIB));
    }

    #[test]
    fn resume_rejects_ranges_that_do_not_tile_the_file() {
        let gap = [
            Segment {
                start: 0,
                end: 4,
                written: 0,
                synced: 0,
            },
            Segment {
                start: 5,
                end: 8,
                written: 0,
                synced: 0,
            },
        ];
        assert!(Plan::resume(&gap, 8, 1, true).is_none());
        let short = [Segment {
            start: 0,
            end: 4,
            written: 0,
            synced: 0,
        }];
        assert!(Plan::resume(&short, 8, 1, true).is_none());
        let overfull = [Segment {
            start: 0,
            end: 4,
            written: 5,
            synced: 0,
        }];
        assert!(Plan::resume(&overfull, 4, 1, true).is_none());
    }
}
