package nodetrust

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodeDecode(t *testing.T) {
	ca := string(newCA(t, "a"))
	in := Trust{Hosts: []Host{
		{Host: "harbor:8443", CA: ca, Registries: []string{"harbor"}},
		{Host: "reg.local:5000", PlainHTTP: true, Registries: []string{"plain"}},
	}, Notes: []string{"a note"}}
	data, err := in.Encode()
	require.NoError(t, err)
	assert.Contains(t, string(data), `"format": 1`)
	got, err := Decode(data)
	require.NoError(t, err)
	assert.Equal(t, in.Hosts, got.Hosts)
	assert.Empty(t, got.Invalid)

	empty, err := Trust{}.Encode()
	require.NoError(t, err)
	assert.Contains(t, string(empty), `"hosts": []`, "an empty list, which removes what nodes trust, is written out")
	d, err := Decode(empty)
	require.NoError(t, err)
	assert.Empty(t, d.Hosts)
}

func TestDecodeRefuses(t *testing.T) {
	ca := string(newCA(t, "a"))
	doc := func(hosts ...any) []byte {
		b, err := json.Marshal(map[string]any{"format": 1, "hosts": hosts})
		require.NoError(t, err)
		return b
	}
	for _, tc := range []struct {
		name    string
		data    []byte
		hosts   []string
		invalid []string
		err     string
	}{
		{name: "not JSON", data: []byte("hosts: []"), err: "not a node trust document"},
		{name: "another format", data: []byte(`{"format": 2, "hosts": []}`), err: "format 2: this agent reads format 1"},
		{name: "no format", data: []byte(`{"hosts": []}`), err: "format 0"},
		{
			name:    "a path in the host",
			data:    doc(map[string]any{"host": "../../etc", "plainHTTP": true}, map[string]any{"host": "ok:5000", "plainHTTP": true}),
			hosts:   []string{"ok:5000"},
			invalid: nil,
			err:     `hosts[0] "../../etc": not a registry host`,
		},
		{name: "containerd's default directory", data: doc(map[string]any{"host": "_default", "plainHTTP": true}), err: `hosts[0] "_default": not a registry host`},
		{name: "a host with a path prefix", data: doc(map[string]any{"host": "reg:5000/team", "plainHTTP": true}), err: "not a registry host as image references write it"},
		{name: "upper case", data: doc(map[string]any{"host": "Reg.example.com", "plainHTTP": true}), err: "not a registry host as image references write it"},
		{name: "a glob", data: doc(map[string]any{"host": "*.example.com", "plainHTTP": true}), err: "a glob host cannot be configured"},
		{name: "a line break in a registry name", data: doc(map[string]any{"host": "reg:5000", "plainHTTP": true, "registries": []string{"a\n[host.\"https://evil\"]"}}), invalid: []string{"reg:5000"}, err: "registry name"},
		{name: "nothing to do", data: doc(map[string]any{"host": "reg:5000"}), invalid: []string{"reg:5000"}, err: "nothing to trust"},
		{name: "a CA and skipped verification", data: doc(map[string]any{"host": "reg:5000", "ca": ca, "skipVerify": true}), invalid: []string{"reg:5000"}, err: "ca and skipVerify together"},
		{name: "a private key as CA", data: doc(map[string]any{"host": "reg:5000", "ca": "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"}), invalid: []string{"reg:5000"}, err: "holds a EC PRIVATE KEY block"},
		{name: "text in the CA", data: doc(map[string]any{"host": "reg:5000", "ca": "hello\n" + ca}), invalid: []string{"reg:5000"}, err: "ca: holds something that is not a PEM block"},
		{name: "text in the CA after a broken block", data: doc(map[string]any{"host": "reg:5000", "ca": "-----BEGIN CERTIFICATE-----\nhello\n" + ca}), invalid: []string{"reg:5000"}, err: "ca: holds something that is not a PEM block"},
		{name: "a certificate block with headers", data: doc(map[string]any{"host": "reg:5000", "ca": strings.Replace(ca, "-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\nNote: hello\n\n", 1)}), invalid: []string{"reg:5000"}, err: "ca: holds a certificate block with headers"},
		{
			name:    "a host listed twice: neither entry",
			data:    doc(map[string]any{"host": "reg:5000", "plainHTTP": true}, map[string]any{"host": "reg:5000", "ca": ca}, map[string]any{"host": "ok:5000", "plainHTTP": true}),
			hosts:   []string{"ok:5000"},
			invalid: []string{"reg:5000"},
			err:     "is listed twice",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decode(tc.data)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
			var hosts []string
			for _, h := range d.Hosts {
				hosts = append(hosts, h.Host)
			}
			assert.Equal(t, tc.hosts, hosts)
			assert.Equal(t, tc.invalid, d.Invalid)
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range Modes {
		got, err := ParseMode(string(m))
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	_, err := ParseMode("insecure")
	assert.EqualError(t, err, `"insecure" is not one of ca, skip-verify, plain-http`)
}

// Whatever the bytes, Decode returns valid hosts or an error, never
// panics, and never lets through a host that is not a plain directory
// name.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"format":1,"hosts":[{"host":"reg:5000","plainHTTP":true}]}`))
	f.Add([]byte(`{"format":1,"hosts":[{"host":"../x","ca":"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"}]}`))
	f.Add([]byte(`{"format":1,"hosts":[{"host":"[::1]:5000","skipVerify":true}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data)
		for _, h := range d.Hosts {
			if verr := h.Validate(); verr != nil {
				t.Fatalf("Decode let through %q: %v", h.Host, verr)
			}
			if h.Host == "" || h.Host == "." || h.Host == ".." || h.Host == "_default" || strings.ContainsAny(h.Host, "/\\\x00") {
				t.Fatalf("Decode let through host %q", h.Host)
			}
		}
		if err == nil && len(d.Invalid) > 0 {
			t.Fatalf("invalid hosts %v without an error", d.Invalid)
		}
	})
}
