package secretparam

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		p        Param
		required bool
		wantErr  string
	}{
		{"inline", Param{Key: "api_key", Inline: "x"}, true, ""},
		{"none optional", Param{Key: "api_key"}, false, ""},
		{"none required", Param{Key: "api_key"}, true, "api_key: required"},
		{"two", Param{Key: "api_key", Inline: "x", Env: "Y"}, false, "set only one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.p.Validate(tc.required)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "key")
	if err := os.WriteFile(good, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECRETPARAM_TEST", " fromenv ")
	for _, tc := range []struct {
		name    string
		p       Param
		want    string
		wantErr error
	}{
		{"inline", Param{Key: "k", Inline: " v "}, "v", nil},
		{"file trimmed", Param{Key: "k", File: good}, "s3cret", nil},
		{"file empty", Param{Key: "k", File: empty}, "", ErrEmpty},
		{"file missing", Param{Key: "k", File: filepath.Join(dir, "nope")}, "", os.ErrNotExist},
		{"env", Param{Key: "k", Env: "SECRETPARAM_TEST"}, "fromenv", nil},
		{"env unset", Param{Key: "k", Env: "SECRETPARAM_TEST_UNSET"}, "", ErrEmpty},
		{"nothing", Param{Key: "k"}, "", nil},
	} {
		got, err := tc.p.Read()
		if !errors.Is(err, tc.wantErr) || got != tc.want {
			t.Errorf("%s: Read = %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error carries the secret: %v", tc.name, err)
		}
	}
}
