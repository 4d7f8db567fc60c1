package guard

import (
	"strings"
	"testing"
)

func TestMediaFindings(t *testing.T) {
	elf := []byte("\x7fELF\x02\x01\x01\x00")
	macho := []byte("\xcf\xfa\xed\xfe\x07\x00\x00\x01")
	zip := []byte("PK\x03\x04\x14\x00")
	tests := []struct {
		name     string
		head     []byte
		detector Detector // "" for no finding
		severity Severity
		reason   string
	}{
		{"report.pdf", elf, DetectContentMismatch, Critical, "elf program disguised as \".pdf\""},
		{"IM1.dcm", macho, DetectContentMismatch, Critical, "mach-o program disguised"},
		{"scan.jpg", []byte("#!/bin/sh\n"), DetectContentMismatch, High, "script disguised"},
		{"archive.dat", elf, DetectExecutable, High, "elf program on import media"},
		{"notes.txt", shortcut(), DetectContentMismatch, High, "windows-shortcut disguised"},
		{"study.dcm", zip, DetectContentMismatch, Medium, "content is zip"},
		{"logo.png", []byte("GIF89a"), DetectContentMismatch, Low, "content is gif"},
		{"install", elf, DetectExecutable, High, "elf program on import media"},
		{"setup.msi", []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), DetectExecutable, High, ".msi files"},
		{"Autorun.Inf", []byte("[autorun]"), DetectAutorun, High, "autorun.inf"},
		{"web.url", []byte("[InternetShortcut]"), DetectShortcut, High, "shortcut"},
		{"tool.ps1", []byte("Write-Host hi"), DetectScript, High, "script"},
		{"IM000001", cleanDICOM("1"), "", Info, ""},
		{"photo.jpg", []byte("\xff\xd8\xff\xe0"), "", Info, ""},
		{"empty.jpg", nil, "", Info, ""},
		{"README", []byte("read me"), "", Info, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mediaFindings(fileFacts{path: tt.name, name: tt.name, head: tt.head, kind: sniff(tt.head)})
			if tt.detector == "" {
				if len(got) != 0 {
					t.Errorf("got %v, want no finding", got)
				}
				return
			}
			if len(got) != 1 || got[0].Detector != tt.detector || got[0].Severity != tt.severity || !strings.Contains(got[0].Reason, tt.reason) {
				t.Errorf("got %v, want one %s %s finding mentioning %q", got, tt.severity, tt.detector, tt.reason)
			}
		})
	}
}

func TestSniffISOAndPE(t *testing.T) {
	iso := make([]byte, sniffLen)
	copy(iso[isoMagicOffset:], "CD001")
	pe := make([]byte, 8192)
	copy(pe, "MZ")
	pe[0x3c], pe[0x3d] = 0x00, 0x10 // e_lfanew = 4096, past the preamble
	copy(pe[4096:], "PE\x00\x00")
	for name, tt := range map[string]struct {
		head []byte
		want Kind
	}{
		"iso":           {iso, KindISO},
		"pe far header": {pe, KindPE},
		"mz only":       {[]byte("MZ\x90\x00"), KindDOS},
		"unknown":       {[]byte("hello"), KindUnknown},
		"empty":         {nil, KindEmptyFile},
		"dicom over mz": {append(append(append([]byte("MZ"), make([]byte, 126)...), "DICM"...), 0), KindDICOM},
	} {
		if got := sniff(tt.head); got != tt.want {
			t.Errorf("%s: sniff = %s, want %s", name, got, tt.want)
		}
	}
}
