package memtrim

import (
	"strings"
	"testing"
)

// smapsFixture is /proc/self/smaps of a static Go binary (inode 4242) with
// the blocks the parser must tell apart; only the fields it reads and a few
// around them are kept.
const smapsFixture = `00400000-031bc000 r-xp 00000000 fd:01 4242                               /usr/local/bin/medic
Size:              45808 kB
Rss:               26224 kB
Anonymous:             0 kB
031bc000-06943000 r--p 02dbc000 fd:01 4242                               /usr/local/bin/medic
Size:              56860 kB
Rss:               30044 kB
Anonymous:             0 kB
06943000-06a85000 rw-p 06543000 fd:01 4242                               /usr/local/bin/medic
Size:               1288 kB
Anonymous:           312 kB
06a85000-08adb000 rw-p 00000000 00:00 0 
Size:              32088 kB
Anonymous:           212 kB
7f93c4f64000-7f93c4fa6000 r--s 00000000 fd:01 777                        /var/lib/medic/kb/000000000008.zap
Anonymous:             0 kB
7f93c5000000-7f93c5100000 r--p 00000000 fd:01 4242                       /usr/local/bin/medic (deleted)
Anonymous:             0 kB
7f93c6000000-7f93c6001000 r--p 00001000 fd:01 4242                       /usr/local/bin/medic
Anonymous:             4 kB
VmFlags: rd mr mw me sd
7ffd50df7000-7ffd50e18000 rw-p 00000000 00:00 0                          [stack]
Anonymous:            16 kB
`

func TestExecutableMappings(t *testing.T) {
	got, skipped, err := executableMappings(strings.NewReader(smapsFixture), 4242)
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{
		{start: 0x400000, end: 0x31bc000},            // text
		{start: 0x31bc000, end: 0x6943000},           // rodata
		{start: 0x7f93c5000000, end: 0x7f93c5100000}, // same inode after the file was replaced
	}
	if len(got) != len(want) {
		t.Fatalf("released %d mappings %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d = %#x-%#x, want %#x-%#x", i, got[i].start, got[i].end, want[i].start, want[i].end)
		}
	}
	// The read-only mapping with a private page is left alone; the data
	// segment, the bss, the knowledge-base file and the stack are never
	// candidates.
	if skipped != 1 {
		t.Errorf("skipped = %d, want 1", skipped)
	}
}

func TestExecutableMappingsErrors(t *testing.T) {
	for name, text := range map[string]string{
		"short header":  "00400000-031bc000 r-xp 00000000\n",
		"bad inode":     "00400000-031bc000 r-xp 00000000 fd:01 x /bin/medic\n",
		"bad anonymous": "00400000-031bc000 r-xp 00000000 fd:01 4242 /bin/medic\nAnonymous: many kB\n",
	} {
		if _, _, err := executableMappings(strings.NewReader(text), 4242); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// An inode of zero (anonymous memory) never names the executable.
	got, _, err := executableMappings(strings.NewReader("00400000-00401000 r--p 00000000 00:00 0 \nAnonymous: 0 kB\n"), 0)
	if err != nil || len(got) != 0 {
		t.Errorf("inode 0: %v, %v", got, err)
	}
}
