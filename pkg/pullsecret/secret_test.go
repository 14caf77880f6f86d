package pullsecret

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Version is what Secrets and the index already hold in clusters: the
// digest must not change.
func TestVersionIsStable(t *testing.T) {
	for _, tc := range []struct {
		w    *Want
		want string
	}{
		{&Want{Name: "regcred-hub", Registry: "hub", Data: []byte(`{"auths":{}}`)}, "feedb31ba3509c6848e76d8c"},
		{&Want{
			Name: "regcred-ecr", Registry: "ecr", Data: []byte(`{"auths":{}}`), ExpiresAt: time.Unix(1_800_000_000, 0),
			Hosts: []string{"a.dkr.ecr.eu-west-1.amazonaws.com", "b.dkr.ecr.us-east-1.amazonaws.com"},
		}, "21a081665a2aff544946518b"},
	} {
		if got := tc.w.Version(); got != tc.want {
			t.Errorf("Version of %s = %s; want %s", tc.w.Name, got, tc.want)
		}
	}
}

// A Want serves every admission until its credential changes: its version
// is computed once.
func TestVersionIsComputedOnce(t *testing.T) {
	w := &Want{Name: "regcred-hub", Registry: "hub", Data: []byte(`{"auths":{}}`)}
	first := w.Version()
	if allocs := testing.AllocsPerRun(100, func() { _ = w.Version() }); allocs != 0 {
		t.Fatalf("Version allocates %v times once computed", allocs)
	}
	if w.Version() != first {
		t.Fatal("Version changed")
	}
}

// A shape is the same for every token of one address, and another for
// another address.
func TestShape(t *testing.T) {
	w := func(data string, exp int64, source string, hosts ...string) *Want {
		return &Want{Name: "regcred-ecr", Registry: "ecr", Data: []byte(data), ExpiresAt: time.Unix(exp, 0), Hosts: hosts, Source: source}
	}
	a := w(`{"auths":{"1.dkr.ecr.eu-west-1.amazonaws.com":{"auth":"QVdTOjE="}}}`, 1_800_000_000, "111111111111.dkr.ecr.eu-west-1.amazonaws.com")
	b := w(`{"auths":{"1.dkr.ecr.eu-west-1.amazonaws.com":{"auth":"QVdTOjI="}}}`, 1_800_000_100, "111111111111.dkr.ecr.eu-west-1.amazonaws.com", "h")
	c := w(`{"auths":{"1.dkr.ecr.eu-west-1.amazonaws.com":{"auth":"QVdTOjE="}}}`, 1_800_000_000, "222222222222.dkr.ecr.eu-west-1.amazonaws.com/team-b")
	if a.Shape() != b.Shape() {
		t.Error("another token or host changed the shape")
	}
	if a.Shape() == c.Shape() || a.Version() == b.Version() {
		t.Error("another address kept the shape, or another token the version")
	}
	if got := a.Shape(); got != "b6f65fa9" {
		t.Errorf("Shape = %s; the index holds it, it must not change", got)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = a.Shape() }); allocs != 0 {
		t.Errorf("Shape allocates %v times once computed", allocs)
	}
}

func TestHostSets(t *testing.T) {
	assert.Equal(t, []string{"a", "b", "c"}, UnionHosts([]string{"c", "a"}, []string{"b", "a"}))
	assert.Empty(t, UnionHosts(nil, nil))
	assert.True(t, ServesHosts([]string{"a", "b"}, []string{"b"}))
	assert.True(t, ServesHosts([]string{"a"}, nil))
	assert.False(t, ServesHosts([]string{"a"}, []string{"a", "b"}))
}
