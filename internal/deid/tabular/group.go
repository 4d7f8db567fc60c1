package tabular

// keyTable assigns dense group numbers to 64-bit keys: an open-addressing
// hash table with linear probing. It is reused from one lattice node to the
// next; a generation stamp empties it in O(1), so grouping a million records
// allocates nothing once the table has grown.
type keyTable struct {
	slots []slot
	mask  uint64
	gen   uint32
	n     int32
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
	h.mask = uint64(len(h.slots) - 1)
	h.gen++
	if h.gen == 0 { // stamps wrapped: clear for real
		clear(h.slots)
		h.gen = 1
	}
	h.n = 0
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
	if int(h.n)*2 >= len(h.slots) {
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

func (h *keyTable) grow() {
	old, oldGen := h.slots, h.gen
	h.slots = make([]slot, 2*len(old))
	h.mask = uint64(len(h.slots) - 1)
	h.gen = 1
	for _, s := range old {
		if s.gen != oldGen {
			continue
		}
		i := mix(s.key) & h.mask
		for h.slots[i].gen == h.gen {
			i = (i + 1) & h.mask
		}
		h.slots[i] = slot{key: s.key, id: s.id, gen: h.gen}
	}
}
