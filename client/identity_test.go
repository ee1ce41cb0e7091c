package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/policy"
)

func TestPhraseWordsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, w := range phraseWords {
		if seen[w] {
			t.Fatalf("word %q twice", w)
		}
		seen[w] = true
	}
	if len(seen) != 2048 {
		t.Fatalf("%d words", len(seen))
	}
}

func TestRecoveryPhrase(t *testing.T) {
	id := NewIdentity()
	phrase := id.Phrase()
	if n := len(strings.Fields(phrase)); n != 24 {
		t.Fatalf("%d words", n)
	}
	back, err := IdentityFromPhrase("  " + strings.ToUpper(phrase) + "\n")
	if err != nil || !back.Key.Equal(id.Key) {
		t.Fatalf("round trip: %v", err)
	}
	words := strings.Fields(phrase)
	words[3], words[4] = words[4], words[3]
	if words[3] != words[4] {
		if _, err := IdentityFromPhrase(strings.Join(words, " ")); !errors.Is(err, ErrBadPhrase) {
			t.Fatalf("swapped words: %v", err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("baka ", 23), strings.Replace(phrase, strings.Fields(phrase)[0], "zzzz", 1)} {
		if _, err := IdentityFromPhrase(bad); !errors.Is(err, ErrBadPhrase) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestExportImport(t *testing.T) {
	id := NewIdentity()
	file, err := id.Export("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(file), string(id.Key.Seed())) {
		t.Fatal("the seed is in the file")
	}
	back, err := ImportIdentity(file, "correct horse")
	if err != nil || !back.Key.Equal(id.Key) {
		t.Fatalf("import: %v", err)
	}
	if _, err := ImportIdentity(file, "wrong"); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	damaged := []byte(strings.Replace(string(file), "A", "B", 1))
	if _, err := ImportIdentity(damaged, "correct horse"); err == nil {
		t.Fatal("a damaged file imported")
	}
	if _, err := id.Export(""); err == nil {
		t.Fatal("exported without a password")
	}
}

func TestLinkTokens(t *testing.T) {
	k := NewDeviceKeys()
	req, err := policy.DecodeLinkRequest(k.Request("laptop").Encode())
	if err != nil || req.Name != "laptop" {
		t.Fatal(err)
	}
	if _, err := policy.DecodeLinkRequest("ghcert1:AAAA"); err == nil {
		t.Fatal("a certificate token decoded as a link request")
	}
}
