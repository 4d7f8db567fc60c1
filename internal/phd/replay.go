package phd

import (
	"encoding/binary"
	"fmt"
)

// WindowSize is how many sequence numbers below the highest one seen a
// Window still remembers.
const WindowSize = 1024

// SeqVerdict classifies a sequence number against a Window.
type SeqVerdict int

// Verdicts. Only SeqNew may be stored; a gateway answers SeqDuplicate with
// the same acknowledgement as the first time (the device missed it) and
// refuses SeqTooOld.
const (
	SeqNew SeqVerdict = iota
	SeqDuplicate
	SeqTooOld
)

func (v SeqVerdict) String() string {
	switch v {
	case SeqNew:
		return "new"
	case SeqDuplicate:
		return string(ReasonReplayDuplicate)
	case SeqTooOld:
		return string(ReasonReplayTooOld)
	}
	return fmt.Sprintf("SeqVerdict(%d)", int(v))
}

// Reason is the rejection reason of the verdict ("" for SeqNew).
func (v SeqVerdict) Reason() Reason {
	switch v {
	case SeqDuplicate:
		return ReasonReplayDuplicate
	case SeqTooOld:
		return ReasonReplayTooOld
	}
	return ""
}

// Window is one device's sliding replay window (as in IPsec, RFC 4303
// §3.4.3): the highest sequence number seen and a bitmap of the WindowSize
// numbers at and below it. Devices number messages from 1; out-of-order
// delivery within the window is accepted, each number once.
//
// A Window is not safe for concurrent use; a gateway keeps one per device
// under that device's lock. Check, then write the message durably, then
// Mark: a crash in between leaves the number unmarked, so the device's
// retry is accepted instead of lost.
type Window struct {
	highest uint64
	seen    [WindowSize / 64]uint64 // bit i: highest-i was seen
}

// Highest is the highest sequence number marked so far (0 if none).
func (w *Window) Highest() uint64 { return w.highest }

// Check classifies seq without changing the window.
func (w *Window) Check(seq uint64) SeqVerdict {
	switch {
	case seq == 0:
		return SeqTooOld
	case seq > w.highest:
		return SeqNew
	case w.highest-seq >= WindowSize:
		return SeqTooOld
	case w.bit(w.highest - seq):
		return SeqDuplicate
	}
	return SeqNew
}

// Mark records seq as seen. It does nothing for a number Check would not
// call new.
func (w *Window) Mark(seq uint64) {
	if w.Check(seq) != SeqNew {
		return
	}
	if seq > w.highest {
		w.shift(seq - w.highest)
		w.highest = seq
	}
	w.setBit(w.highest - seq)
}

func (w *Window) bit(i uint64) bool { return w.seen[i/64]&(1<<(i%64)) != 0 }

func (w *Window) setBit(i uint64) { w.seen[i/64] |= 1 << (i % 64) }

// shift moves every remembered number n places further from the top.
func (w *Window) shift(n uint64) {
	if n >= WindowSize {
		w.seen = [WindowSize / 64]uint64{}
		return
	}
	words, bits := int(n/64), n%64
	for i := len(w.seen) - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = w.seen[j] << bits
			if bits > 0 && j > 0 {
				v |= w.seen[j-1] >> (64 - bits)
			}
		}
		w.seen[i] = v
	}
}

// windowVersion is the first byte of the persisted form.
const windowVersion = 1

// WindowStateSize is the length of MarshalBinary's output.
const WindowStateSize = 1 + 8 + WindowSize/8

// MarshalBinary returns the window's state (137 bytes): a version byte,
// the highest number (big-endian) and the bitmap.
func (w *Window) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, WindowStateSize)
	out = append(out, windowVersion)
	out = binary.BigEndian.AppendUint64(out, w.highest)
	for _, word := range w.seen {
		out = binary.BigEndian.AppendUint64(out, word)
	}
	return out, nil
}

// UnmarshalBinary restores a state written by MarshalBinary.
func (w *Window) UnmarshalBinary(data []byte) error {
	if len(data) != WindowStateSize || data[0] != windowVersion {
		return fmt.Errorf("replay window state: want %d bytes of version %d", WindowStateSize, windowVersion)
	}
	w.highest = binary.BigEndian.Uint64(data[1:9])
	for i := range w.seen {
		w.seen[i] = binary.BigEndian.Uint64(data[9+8*i:])
	}
	if w.highest == 0 && w.seen != [WindowSize / 64]uint64{} {
		return fmt.Errorf("replay window state: marks without a highest number")
	}
	return nil
}
