package tabular

// keyTable assigns dense group numbers to 64-bit keys: an open-addressing
// hash table with linear probing. It is reused from one lattice node to the
// next: a generation stamp empties it in O(1), and it starts each node small
// (using a prefix of its largest allocation) and grows as classes appear, so
// a node with few classes probes a table that fits the processor's cache.
type keyTable struct {
	slots []slot // the allocation; slots[:mask+1] is in use
	mask  uint64
	gen   uint32
	n     int32
	spare []slot // live entries during an in-place grow
}

type slot struct {
	key uint64
	id  int32
	gen uint32
}

// reset empties the table and makes room for about want groups.
func (h *keyTable) reset(want int) {
	size := 1024
	for size < 2*want {
		size <<= 1
	}
	if size > len(h.slots) {
		h.slots = make([]slot, size)
		h.gen = 0
	}
	h.mask = uint64(size - 1)
	h.bump()
	h.n = 0
}

// bump starts a new generation: every slot counts as empty.
func (h *keyTable) bump() {
	h.gen++
	if h.gen == 0 { // stamps wrapped: clear for real
		clear(h.slots)
		h.gen = 1
	}
}

// mix scrambles packed keys whose low bits are often all alike.
func mix(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// id returns the group number of key, adding it when new. The table grows
// when half full.
func (h *keyTable) id(key uint64) int32 {
	if int(h.n)*2 >= int(h.mask+1) {
		h.grow()
	}
	i := mix(key) & h.mask
	for {
		s := &h.slots[i]
		if s.gen != h.gen {
			*s = slot{key: key, id: h.n, gen: h.gen}
			h.n++
			return s.id
		}
		if s.key == key {
			return s.id
		}
		i = (i + 1) & h.mask
	}
}

// live calls f for every key in the table with its group number.
func (h *keyTable) live(f func(key uint64, id int32)) {
	for _, s := range h.slots[:h.mask+1] {
		if s.gen == h.gen {
			f(s.key, s.id)
		}
	}
}

// grow doubles the table in use, within the allocation when it is big
// enough.
func (h *keyTable) grow() {
	h.spare = h.spare[:0]
	h.live(func(key uint64, id int32) { h.spare = append(h.spare, slot{key: key, id: id}) })
	size := 2 * (h.mask + 1)
	if size > uint64(len(h.slots)) {
		h.slots = make([]slot, size)
		h.gen = 0
	}
	h.mask = size - 1
	h.bump()
	for _, s := range h.spare {
		i := mix(s.key) & h.mask
		for h.slots[i].gen == h.gen {
			i = (i + 1) & h.mask
		}
		h.slots[i] = slot{key: s.key, id: s.id, gen: h.gen}
	}
}
