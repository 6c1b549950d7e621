package suggest

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"max_message_size", "max_recipients", "listen"}
	for word, want := range map[string]string{"max_mesage_size": "max_message_size", "listn": "listen", "max_recipient": "max_recipients"} {
		if got, ok := Closest(word, known); !ok || got != want {
			t.Errorf("Closest(%q) = %q, %v; want %q", word, got, ok, want)
		}
	}
	if got, ok := Closest("zzzz", known); ok {
		t.Errorf("Closest(zzzz) = %q, want none", got)
	}
	if d := Distance("kitten", "sitting"); d != 3 {
		t.Errorf("Distance = %d", d)
	}
}
