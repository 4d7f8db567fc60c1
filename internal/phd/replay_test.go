package phd

import (
	"testing"
)

func TestWindow(t *testing.T) {
	tests := []struct {
		name   string
		marked []uint64
		seq    uint64
		want   SeqVerdict
	}{
		{"first message", nil, 1, SeqNew},
		{"zero is never valid", nil, 0, SeqTooOld},
		{"next", []uint64{1, 2, 3}, 4, SeqNew},
		{"duplicate of highest", []uint64{1, 2, 3}, 3, SeqDuplicate},
		{"duplicate below highest", []uint64{1, 2, 3}, 2, SeqDuplicate},
		{"late but unseen", []uint64{1, 3}, 2, SeqNew},
		{"gap then late arrival", []uint64{10, 500}, 11, SeqNew},
		{"bottom of window", []uint64{1, WindowSize}, 1, SeqDuplicate},
		{"just out of window", []uint64{1, WindowSize + 1}, 1, SeqTooOld},
		{"far jump forgets all", []uint64{5, 5 + 3*WindowSize}, 6, SeqTooOld},
		{"seen before a word-boundary shift", []uint64{100, 163, 164}, 100, SeqDuplicate},
		{"unseen before a word-boundary shift", []uint64{100, 163, 164}, 101, SeqNew},
		{"seen across a 65-step shift", []uint64{7, 72}, 7, SeqDuplicate},
		{"neighbour unseen across a 65-step shift", []uint64{7, 72}, 8, SeqNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Window
			for _, s := range tt.marked {
				w.Mark(s)
			}
			if got := w.Check(tt.seq); got != tt.want {
				t.Errorf("Check(%d) after %v = %v, want %v", tt.seq, tt.marked, got, tt.want)
			}
		})
	}
}

// A reference model: every number ever marked, and the highest.
func TestWindowAgainstModel(t *testing.T) {
	var w Window
	seen := map[uint64]bool{}
	var highest uint64
	x := uint64(12345)
	for i := 0; i < 20000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		var seq uint64
		switch x >> 62 {
		case 0: // jump ahead, sometimes by more than the window
			seq = highest + 1 + (x>>40)%1500
		default: // within or just below the window
			seq = highest + 5 - min(highest+4, (x>>40)%1100)
		}
		want := SeqNew
		switch {
		case seq == 0 || seq+WindowSize <= highest:
			want = SeqTooOld
		case seen[seq]:
			want = SeqDuplicate
		}
		if got := w.Check(seq); got != want {
			t.Fatalf("step %d: Check(%d) with highest %d = %v, want %v", i, seq, highest, got, want)
		}
		if want == SeqNew {
			w.Mark(seq)
			seen[seq] = true
			highest = max(highest, seq)
		}
	}
}

func TestWindowPersists(t *testing.T) {
	var w Window
	for _, s := range []uint64{3, 900, 1200, 1201, 1500} {
		w.Mark(s)
	}
	state, err := w.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(state) != WindowStateSize {
		t.Fatalf("state is %d bytes, want %d", len(state), WindowStateSize)
	}
	var restored Window
	if err := restored.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(0); seq < 1600; seq++ {
		if got, want := restored.Check(seq), w.Check(seq); got != want {
			t.Errorf("restored Check(%d) = %v, want %v", seq, got, want)
		}
	}
	if restored.Highest() != 1500 {
		t.Errorf("Highest() = %d, want 1500", restored.Highest())
	}
	for name, bad := range map[string][]byte{
		"short":         state[:10],
		"other version": append([]byte{9}, state[1:]...),
		"marks, no top": append(append([]byte{1}, make([]byte, 8)...), append([]byte{1}, make([]byte, WindowSize/8-1)...)...),
	} {
		if err := new(Window).UnmarshalBinary(bad); err == nil {
			t.Errorf("UnmarshalBinary(%s) accepted a bad state", name)
		}
	}
}
