// Package iso9660test builds small ISO 9660 images in memory for tests of
// the guard scanner and the iso9660 reader, so no test needs genisoimage
// or xorriso.
package iso9660test

import (
	"bytes"
	"encoding/binary"
	"path"
	"sort"
	"strings"
	"unicode/utf16"
)

const sector = 2048

// Entry is one file or directory of the image.
type Entry struct {
	Path  string // slash path; ISO names are written as given
	Data  []byte // file content
	Dir   bool
	Alias string // for a directory: point its record at this directory's extent instead, "." for the root (makes loops)
}

// Options shape the image.
type Options struct {
	Label  string
	Joliet bool // add a Joliet supplementary descriptor and tree
}

type node struct {
	name     string
	dir      bool
	data     []byte
	alias    string
	children []*node
	block    map[bool]int // per tree (false: ISO, true: Joliet): directory extent
	size     map[bool]int
	fileAt   int
}

// Build returns the bytes of an image holding entries. Parent
// directories are created as needed.
func Build(entries []Entry, opt Options) []byte {
	root := &node{dir: true, block: map[bool]int{}, size: map[bool]int{}}
	byPath := map[string]*node{"": root}
	for _, e := range entries {
		n := ensure(byPath, e.Path, e.Dir)
		n.data, n.alias = e.Data, e.Alias
	}
	trees := []bool{false}
	if opt.Joliet {
		trees = append(trees, true)
	}
	next := 16 + len(trees) + 1 // descriptors and terminator
	for _, j := range trees {
		next = placeDirs(root, j, next)
	}
	for _, n := range allNodes(root) {
		if !n.dir {
			n.fileAt = next
			next += max(1, (len(n.data)+sector-1)/sector)
		}
	}
	img := make([]byte, next*sector)
	for _, j := range trees {
		writeDirs(img, root, root, j, byPath)
	}
	for _, n := range allNodes(root) {
		if !n.dir {
			copy(img[n.fileAt*sector:], n.data)
		}
	}
	for i, j := range trees {
		writeDescriptor(img[(16+i)*sector:], root, j, opt.Label, next)
	}
	term := img[(16+len(trees))*sector:]
	term[0] = 255
	copy(term[1:], "CD001\x01")
	return img
}

func ensure(byPath map[string]*node, p string, dir bool) *node {
	if n, ok := byPath[p]; ok {
		n.dir = n.dir || dir
		return n
	}
	parent := ensure(byPath, parentOf(p), true)
	n := &node{name: path.Base(p), dir: dir, block: map[bool]int{}, size: map[bool]int{}}
	parent.children = append(parent.children, n)
	sort.Slice(parent.children, func(i, j int) bool { return parent.children[i].name < parent.children[j].name })
	byPath[p] = n
	return n
}

func parentOf(p string) string {
	d := path.Dir(p)
	if d == "." {
		return ""
	}
	return d
}

func allNodes(n *node) []*node {
	out := []*node{n}
	for _, c := range n.children {
		out = append(out, allNodes(c)...)
	}
	return out
}

func placeDirs(n *node, joliet bool, next int) int {
	n.size[joliet] = dirBytes(n, joliet)
	n.block[joliet] = next
	next += n.size[joliet] / sector
	for _, c := range n.children {
		if c.dir && c.alias == "" {
			next = placeDirs(c, joliet, next)
		}
	}
	return next
}

// dirBytes is the sector-padded size of a directory's records.
func dirBytes(n *node, joliet bool) int {
	pos := 0
	add := func(l int) {
		if pos%sector+l > sector {
			pos = (pos/sector + 1) * sector
		}
		pos += l
	}
	add(34)
	add(34)
	for _, c := range n.children {
		add(recordLen(len(ident(c, joliet))))
	}
	return max(sector, (pos+sector-1)/sector*sector)
}

func recordLen(lfi int) int {
	l := 33 + lfi
	if lfi%2 == 0 {
		l++
	}
	return l
}

func ident(n *node, joliet bool) []byte {
	name := n.name
	if !n.dir {
		name += ";1"
	}
	if !joliet {
		return []byte(strings.ToUpper(name))
	}
	var b bytes.Buffer
	for _, u := range utf16.Encode([]rune(name)) {
		binary.Write(&b, binary.BigEndian, u)
	}
	return b.Bytes()
}

func writeDirs(img []byte, n, parent *node, joliet bool, byPath map[string]*node) {
	buf := img[n.block[joliet]*sector : n.block[joliet]*sector+n.size[joliet]]
	pos := 0
	put := func(id []byte, at, size int, dir bool) {
		l := recordLen(len(id))
		if pos%sector+l > sector {
			pos = (pos/sector + 1) * sector
		}
		writeRecord(buf[pos:], id, at, size, dir)
		pos += l
	}
	put([]byte{0}, n.block[joliet], n.size[joliet], true)
	put([]byte{1}, parent.block[joliet], parent.size[joliet], true)
	for _, c := range n.children {
		switch {
		case c.dir && c.alias != "":
			target := byPath[strings.TrimPrefix(c.alias, ".")]
			put(ident(c, joliet), target.block[joliet], target.size[joliet], true)
		case c.dir:
			put(ident(c, joliet), c.block[joliet], c.size[joliet], true)
			writeDirs(img, c, n, joliet, byPath)
		default:
			put(ident(c, joliet), c.fileAt, len(c.data), false)
		}
	}
}

func writeRecord(b, id []byte, at, size int, dir bool) {
	b[0] = byte(recordLen(len(id)))
	both32(b[2:], uint32(at))
	both32(b[10:], uint32(size))
	if dir {
		b[25] = 2
	}
	binary.LittleEndian.PutUint16(b[28:], 1)
	binary.BigEndian.PutUint16(b[30:], 1)
	b[32] = byte(len(id))
	copy(b[33:], id)
}

func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

func writeDescriptor(b []byte, root *node, joliet bool, label string, blocks int) {
	b[0] = 1
	if joliet {
		b[0] = 2
		copy(b[88:], "%/E")
	}
	copy(b[1:], "CD001\x01")
	copy(b[40:72], bytes.Repeat([]byte(" "), 32))
	copy(b[40:72], label)
	both32(b[80:], uint32(blocks))
	binary.LittleEndian.PutUint16(b[128:], sector)
	binary.BigEndian.PutUint16(b[130:], sector)
	writeRecord(b[156:190], []byte{0}, root.block[joliet], root.size[joliet], true)
}
