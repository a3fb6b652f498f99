package file

import (
	"fmt"
	"testing"
)

func TestKeySetForgetsOldestFirst(t *testing.T) {
	t.Parallel()
	k := newKeySet(3)
	for _, key := range []string{"a", "b", "c", "a"} { // re-adding "a" does not refresh it
		k.add(key)
	}
	k.add("d")
	tests := []struct {
		key  string
		want bool
	}{{"a", false}, {"b", true}, {"c", true}, {"d", true}}
	for _, tt := range tests {
		if got := k.has(tt.key); got != tt.want {
			t.Errorf("has(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
	for i := range 10 {
		k.add(fmt.Sprint(i))
	}
	if k.len() != 3 || !k.has("7") || !k.has("8") || !k.has("9") || k.has("6") {
		t.Errorf("after 10 more adds the set holds %v, want the last three", k.m)
	}
}
