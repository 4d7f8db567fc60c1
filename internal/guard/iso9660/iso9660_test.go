package iso9660_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/medsec/medsec/internal/guard/iso9660"
	"github.com/medsec/medsec/internal/guard/iso9660/iso9660test"
)

type seen struct {
	Path string
	Dir  bool
	Data string
	Err  string
}

func walkAll(t *testing.T, img []byte, lim iso9660.Limits) ([]seen, error) {
	t.Helper()
	im, err := iso9660.Open(bytes.NewReader(img), int64(len(img)), lim)
	if err != nil {
		return nil, err
	}
	var out []seen
	err = im.Walk(func(f iso9660.File, err error) error {
		s := seen{Path: f.Path, Dir: f.Dir}
		if err != nil {
			s.Err = err.Error()
		} else if !f.Dir {
			b, rerr := io.ReadAll(im.Open(f))
			if rerr != nil {
				t.Fatalf("read %s: %v", f.Path, rerr)
			}
			s.Data = string(b)
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

func TestWalk(t *testing.T) {
	big := strings.Repeat("x", 5000) // spans three sectors
	entries := []iso9660test.Entry{
		{Path: "DICOMDIR", Data: []byte("dir")},
		{Path: "DICOM/ST1/SE1/IM1", Data: []byte("image one")},
		{Path: "DICOM/ST1/SE1/IM2", Data: []byte(big)},
		{Path: "README.TXT", Data: []byte("hello")},
		{Path: "EMPTY", Dir: true},
	}
	want := []seen{
		{Path: "DICOM", Dir: true},
		{Path: "DICOM/ST1", Dir: true},
		{Path: "DICOM/ST1/SE1", Dir: true},
		{Path: "DICOM/ST1/SE1/IM1", Data: "image one"},
		{Path: "DICOM/ST1/SE1/IM2", Data: big},
		{Path: "DICOMDIR", Data: "dir"},
		{Path: "EMPTY", Dir: true},
		{Path: "README.TXT", Data: "hello"},
	}
	img := iso9660test.Build(entries, iso9660test.Options{Label: "MRI_CD"})
	got, err := walkAll(t, img, iso9660.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("walk (-want +got):\n%s", diff)
	}
	im, _ := iso9660.Open(bytes.NewReader(img), int64(len(img)), iso9660.DefaultLimits)
	if im.Label() != "MRI_CD" || im.Joliet() {
		t.Errorf("label %q joliet %v, want MRI_CD false", im.Label(), im.Joliet())
	}
}

func TestWalkJoliet(t *testing.T) {
	img := iso9660test.Build([]iso9660test.Entry{{Path: "Viewer/Read me first.txt", Data: []byte("long name")}},
		iso9660test.Options{Joliet: true})
	got, err := walkAll(t, img, iso9660.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := []seen{{Path: "Viewer", Dir: true}, {Path: "Viewer/Read me first.txt", Data: "long name"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("walk (-want +got):\n%s", diff)
	}
}

func TestWalkHostile(t *testing.T) {
	loop := iso9660test.Build([]iso9660test.Entry{
		{Path: "A/FILE", Data: []byte("x")},
		{Path: "A/BACK", Dir: true, Alias: "."},
	}, iso9660test.Options{})
	deep := iso9660test.Build([]iso9660test.Entry{{Path: "A/B/C/D/E/F", Data: []byte("x")}}, iso9660test.Options{})
	var many []iso9660test.Entry
	for i := range 20 {
		many = append(many, iso9660test.Entry{Path: fmt.Sprintf("F%02d", i), Data: []byte("x")})
	}
	wide := iso9660test.Build(many, iso9660test.Options{})
	pastEnd := iso9660test.Build([]iso9660test.Entry{{Path: "BIG", Data: make([]byte, 4096)}}, iso9660test.Options{})
	pastEnd = pastEnd[:len(pastEnd)-2048]

	small := iso9660.Limits{MaxDepth: 4, MaxEntries: 10, MaxDirSize: 1 << 20}
	tests := []struct {
		name    string
		img     []byte
		wantErr error
		wantBad string // an entry error to expect
	}{
		{"directory loop", loop, nil, "directory loop"},
		{"too deep", deep, iso9660.ErrLimit, ""},
		{"too many entries", wide, iso9660.ErrLimit, ""},
		{"extent past the end", pastEnd, nil, "past the image end"},
		{"not an image", make([]byte, 40000), iso9660.ErrNotISO, ""},
		{"too short", []byte("CD001"), iso9660.ErrNotISO, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := walkAll(t, tt.img, small)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantBad == "" {
				return
			}
			for _, s := range got {
				if strings.Contains(s.Err, tt.wantBad) {
					return
				}
			}
			t.Errorf("entries %+v, want one with error %q", got, tt.wantBad)
		})
	}
}
