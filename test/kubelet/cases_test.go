// Package kubelet checks, with the kubelet's own credential lookup
// (testbed.KubeletJudge, k8s.io/kubernetes v1.37.2), the facts SPEC.md
// states about which auths key serves an image, and shows where
// go-containerregistry's pull-secret keychain answers differently.
package kubelet

// entry is one auths key of a pull secret; its password is made up from
// the user name.
type entry struct{ key, user string }

// secret is a pull secret: a name and its auths entries.
type secret struct {
	name    string
	entries []entry
}

// cand is a credential the kubelet tries: the secret and key it came from,
// and its user.
type cand struct{ secret, key, user string }

// anonymous is what go-containerregistry's keychain answers when no key
// matches: no user.
const anonymous = ""

// lookupCase is one Pod (its secrets) and one image, with what the kubelet
// and go-containerregistry's keychain do with them.
type lookupCase struct {
	name    string
	secrets []secret
	image   string
	// lookup is the name the kubelet looks credentials up for ("": not
	// checked).
	lookup string
	// kubelet are the credentials the kubelet tries, in order.
	kubelet []cand
	// ggcr is the user go-containerregistry's keychain resolves to
	// (anonymous: none; "error": it cannot parse the image).
	ggcr string
}

// one is a Pod's only pull secret with one key.
func one(name, key, user string) []secret {
	return []secret{{name: name, entries: []entry{{key, user}}}}
}

// hubKeys are Docker Hub credentials in two secrets: under docker.io, and
// under https://index.docker.io/v1/ (the default server of docker login
// and kubectl create secret docker-registry).
var hubKeys = []secret{
	{name: "hub", entries: []entry{{"docker.io", "hub"}}},
	{name: "legacy", entries: []entry{{"https://index.docker.io/v1/", "legacy"}}},
}

// regcredHub is Docker Hub's pull secret as regcred writes it
// (pullsecret.AuthKeys).
var regcredHub = []secret{{name: "s", entries: []entry{{"docker.io", "hub"}, {"*.docker.io", "hub"}}}}

// teams are the secrets of two registries on one host whose path prefixes
// are prefixes of each other as strings.
var teams = []secret{
	{name: "a", entries: []entry{{"registry.example.com/team-a", "a"}}},
	{name: "ab", entries: []entry{{"registry.example.com/team-ab", "ab"}}},
}

var lookupCases = []lookupCase{
	// Docker Hub names are normalised with Docker's reference rules.
	{name: "nginx is docker.io/library/nginx", secrets: one("s", "docker.io", "hub"), image: "nginx",
		lookup: "docker.io/library/nginx", kubelet: []cand{{"s", "docker.io", "hub"}}, ggcr: anonymous},
	{name: "index.docker.io is rewritten to docker.io", secrets: one("s", "docker.io", "hub"), image: "index.docker.io/library/nginx:1.27",
		lookup: "docker.io/library/nginx", kubelet: []cand{{"s", "docker.io", "hub"}}, ggcr: anonymous},
	{name: "a docker.io key with a path serves below it", secrets: one("s", "docker.io/team", "team"), image: "team/app",
		lookup: "docker.io/team/app", kubelet: []cand{{"s", "docker.io/team", "team"}}, ggcr: anonymous},
	{name: "an index.docker.io key serves Docker Hub through the fallback", secrets: one("s", "https://index.docker.io/v1/", "legacy"), image: "nginx",
		lookup: "docker.io/library/nginx", kubelet: []cand{{"s", "https://index.docker.io/v1/", "legacy"}}, ggcr: "legacy"},
	{name: "a docker.io key hides the fallback", secrets: hubKeys, image: "docker.io/library/nginx",
		kubelet: []cand{{"hub", "docker.io", "hub"}}, ggcr: "legacy"},
	{name: "registry-1.docker.io stays its own host", secrets: hubKeys, image: "registry-1.docker.io/library/nginx",
		lookup: "registry-1.docker.io/library/nginx", kubelet: nil, ggcr: anonymous},
	{name: "a registry-1.docker.io key serves only it", secrets: one("s", "registry-1.docker.io", "r1"), image: "registry-1.docker.io/library/nginx",
		kubelet: []cand{{"s", "registry-1.docker.io", "r1"}}, ggcr: "r1"},
	{name: "a registry-1.docker.io key does not serve nginx", secrets: one("s", "registry-1.docker.io", "r1"), image: "nginx",
		kubelet: nil, ggcr: anonymous},

	// regcred writes Docker Hub credentials under docker.io and *.docker.io.
	{name: "regcred's Docker Hub keys serve nginx", secrets: regcredHub, image: "nginx",
		kubelet: []cand{{"s", "docker.io", "hub"}}, ggcr: "hub"},
	{name: "regcred's Docker Hub keys serve registry-1.docker.io", secrets: regcredHub, image: "registry-1.docker.io/library/nginx",
		kubelet: []cand{{"s", "*.docker.io", "hub"}}, ggcr: "hub"},
	{name: "regcred's Docker Hub keys do not serve localhost/x", secrets: regcredHub, image: "localhost/x",
		kubelet: nil, ggcr: anonymous},

	// The key's path is a character prefix of the image's path.
	{name: "team-a serves team-ab", secrets: one("s", "registry.example.com/team-a", "a"), image: "registry.example.com/team-ab/app",
		kubelet: []cand{{"s", "registry.example.com/team-a", "a"}}, ggcr: "a"},
	{name: "team-a serves team-a itself", secrets: one("s", "registry.example.com/team-a", "a"), image: "registry.example.com/team-a",
		kubelet: []cand{{"s", "registry.example.com/team-a", "a"}}, ggcr: "a"},
	{name: "team-a/ serves below team-a", secrets: one("s", "registry.example.com/team-a/", "a"), image: "registry.example.com/team-a/app",
		kubelet: []cand{{"s", "registry.example.com/team-a/", "a"}}, ggcr: "a"},
	{name: "team-a/ does not serve team-a", secrets: one("s", "registry.example.com/team-a/", "a"), image: "registry.example.com/team-a",
		kubelet: nil, ggcr: anonymous},
	{name: "team-a/ does not serve team-ab", secrets: one("s", "registry.example.com/team-a/", "a"), image: "registry.example.com/team-ab/app",
		kubelet: nil, ggcr: anonymous},
	{name: "team-ab's own key is tried before team-a's", secrets: teams, image: "registry.example.com/team-ab/app",
		kubelet: []cand{{"ab", "registry.example.com/team-ab", "ab"}, {"a", "registry.example.com/team-a", "a"}}, ggcr: "ab"},
	{name: "team-ab's key does not serve team-a", secrets: teams, image: "registry.example.com/team-a/app",
		kubelet: []cand{{"a", "registry.example.com/team-a", "a"}}, ggcr: "a"},
	{name: "https:// and /v2/ are dropped from a key", secrets: one("s", "https://registry.example.com/v2/", "h"), image: "registry.example.com/app",
		kubelet: []cand{{"s", "https://registry.example.com/v2/", "h"}}, ggcr: "h"},

	// Every matching key is tried, in reverse lexical order of the key,
	// whichever secret holds it; for one key, in the order of the secrets.
	{name: "reverse lexical order across secrets", secrets: []secret{
		{name: "first", entries: []entry{{"*.example.com", "glob"}, {"registry.example.com", "host"}}},
		{name: "second", entries: []entry{{"registry.example.com/team-a", "team"}, {"registry.example.com", "host2"}}},
	}, image: "registry.example.com/team-a/app",
		kubelet: []cand{
			{"second", "registry.example.com/team-a", "team"},
			{"first", "registry.example.com", "host"},
			{"second", "registry.example.com", "host2"},
			{"first", "*.example.com", "glob"},
		}, ggcr: "team"},

	// Host labels match one by one as globs.
	{name: "*.example.com matches one label", secrets: one("s", "*.example.com", "glob"), image: "registry.example.com/app",
		kubelet: []cand{{"s", "*.example.com", "glob"}}, ggcr: "glob"},
	{name: "*.example.com does not match two labels", secrets: one("s", "*.example.com", "glob"), image: "a.b.example.com/app",
		kubelet: nil, ggcr: anonymous},
	{name: "*.example.com does not match example.com", secrets: one("s", "*.example.com", "glob"), image: "example.com/app",
		kubelet: nil, ggcr: anonymous},
	{name: "ports must be equal", secrets: one("s", "*.example.com", "glob"), image: "registry.example.com:5000/app",
		kubelet: nil, ggcr: anonymous},
	{name: "registry.*.com matches a middle label", secrets: one("s", "registry.*.com", "mid"), image: "registry.example.com/app",
		kubelet: []cand{{"s", "registry.*.com", "mid"}}, ggcr: "mid"},

	// The Docker Hub fallback: no key matches and the first path
	// component has no '.' or ':'.
	{name: "fallback fires for localhost/x", secrets: one("s", "https://index.docker.io/v1/", "legacy"), image: "localhost/x",
		lookup: "localhost/x", kubelet: []cand{{"s", "https://index.docker.io/v1/", "legacy"}}, ggcr: anonymous},
	{name: "fallback fires for Foo/bar", secrets: one("s", "https://index.docker.io/v1/", "legacy"), image: "Foo/bar",
		lookup: "Foo/bar", kubelet: []cand{{"s", "https://index.docker.io/v1/", "legacy"}}, ggcr: "error"},
	{name: "no fallback for localhost:5000/x", secrets: one("s", "https://index.docker.io/v1/", "legacy"), image: "localhost:5000/x",
		kubelet: nil, ggcr: anonymous},
	{name: "no fallback for a host with a dot", secrets: one("s", "https://index.docker.io/v1/", "legacy"), image: "registry.example.com/x",
		kubelet: nil, ggcr: anonymous},
	{name: "the fallback needs the key index.docker.io", secrets: one("s", "docker.io", "hub"), image: "localhost/x",
		kubelet: nil, ggcr: anonymous},

	// Letter case of the host matters.
	{name: "Quay.io finds no quay.io key", secrets: one("s", "quay.io", "quay"), image: "Quay.io/team/app",
		lookup: "Quay.io/team/app", kubelet: nil, ggcr: anonymous},
	{name: "quay.io finds no Quay.io key", secrets: one("s", "Quay.io", "quay"), image: "quay.io/team/app",
		kubelet: nil, ggcr: anonymous},
	{name: "Quay.io finds a Quay.io key", secrets: one("s", "Quay.io", "quay"), image: "Quay.io/team/app",
		kubelet: []cand{{"s", "Quay.io", "quay"}}, ggcr: "quay"},

	// A bracketed IPv6 host: the brackets are read as a glob class.
	{name: "[::1] never matches", secrets: one("s", "[::1]", "v6"), image: "[::1]/app",
		lookup: "[::1]/app", kubelet: nil, ggcr: anonymous},
	{name: "[::1]:5000 matches", secrets: one("s", "[::1]:5000", "v6"), image: "[::1]:5000/app",
		lookup: "[::1]:5000/app", kubelet: []cand{{"s", "[::1]:5000", "v6"}}, ggcr: "v6"},
}
