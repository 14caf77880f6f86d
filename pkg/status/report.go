package status

import (
	"sort"
	"time"

	"github.com/regcred/regcred/pkg/check"
	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/registries"
)

// Report is what the status ConfigMap holds, under the key status.yaml.
type Report struct {
	Cluster    string           `json:"cluster"`
	Config     ConfigReport     `json:"config"`
	Registries []RegistryReport `json:"registries"`
}

// ConfigReport is the state of the config.
type ConfigReport struct {
	Source string `json:"source"`
	// ServingVersion is the resourceVersion of the config object serving.
	ServingVersion string `json:"servingVersion,omitempty"`
	LoadedAt       string `json:"loadedAt,omitempty"`
	// LastError is why the latest change was rejected, if it was.
	LastError       string `json:"lastError,omitempty"`
	RejectedVersion string `json:"rejectedVersion,omitempty"`
	// ServingLastGood is set when the stored config is rejected and the
	// config serving is the last good one, kept from before this replica
	// started; LastGoodLoadedAt is when that one was loaded.
	ServingLastGood  bool   `json:"servingLastGood,omitempty"`
	LastGoodLoadedAt string `json:"lastGoodLoadedAt,omitempty"`
}

// RegistryReport is the state of one registry.
type RegistryReport struct {
	Name    string `json:"name"`
	Default bool   `json:"default,omitempty"`
	Type    string `json:"type,omitempty"`
	URL     string `json:"url,omitempty"`
	// Valid is false when the latest config change names this registry in
	// its problems; the last good config keeps serving meanwhile.
	Valid    bool     `json:"valid"`
	Problems []string `json:"problems,omitempty"`
	// Serving is false for a registry only in a rejected config.
	Serving           bool   `json:"serving"`
	Injects           bool   `json:"injectsInThisCluster"`
	Mode              string `json:"mode,omitempty"`
	Secret            string `json:"secret,omitempty"`
	NamespaceSelector string `json:"namespaceSelector,omitempty"`
	Connection        string `json:"connection,omitempty"`
	// LastCheck is the latest login check.
	LastCheck *CheckReport `json:"lastCheck,omitempty"`
	// TokenExpiresAt is when the current token expires (ECR).
	TokenExpiresAt string `json:"tokenExpiresAt,omitempty"`
}

// CheckReport is a login check's result.
type CheckReport struct {
	Time    string `json:"time"`
	Result  string `json:"result"`
	Message string `json:"message"`
}

// Build assembles the report.
func Build(cluster string, set *registries.Set, cs configwatch.Status, source string, checks map[string]check.Result) Report {
	rep := Report{Cluster: cluster, Config: ConfigReport{Source: source, ServingVersion: cs.Version}}
	if !set.Loaded.IsZero() {
		rep.Config.LoadedAt = set.Loaded.UTC().Format(time.RFC3339)
	}
	if cs.LastError != nil {
		rep.Config.LastError = cs.LastError.Error()
		rep.Config.RejectedVersion = cs.RejectedVersion
	}
	if cs.FromLastGood {
		rep.Config.ServingLastGood = true
		rep.Config.LastGoodLoadedAt = cs.LastGoodSavedAt.UTC().Format(time.RFC3339)
	}
	byReg := map[string][]string{}
	for name, ps := range config.ProblemsOf(cs.LastError).ByRegistry() {
		if name == "" {
			continue // problems of the whole config are in lastError
		}
		for _, p := range ps {
			msg := p.Message
			if p.Field != "" {
				msg = p.Field + ": " + msg
			}
			byReg[name] = append(byReg[name], msg)
		}
	}
	seen := map[string]bool{}
	for _, r := range set.Registries {
		seen[r.Name] = true
		rr := RegistryReport{
			Name: r.Name, Default: r.Default, Type: string(r.Type.Name), URL: r.URL,
			Valid: len(byReg[r.Name]) == 0, Problems: byReg[r.Name], Serving: true,
			Injects: r.Injects, Mode: string(r.Mode), Secret: r.SecretName, Connection: string(r.Connection),
		}
		if r.Namespaces != nil {
			rr.NamespaceSelector = r.Namespaces.String()
		}
		if res, ok := checks[r.Name]; ok {
			result := "ok"
			switch {
			case res.Skipped:
				result = "skipped"
			case !res.OK:
				result = "failed"
			}
			rr.LastCheck = &CheckReport{Time: res.Time.UTC().Format(time.RFC3339), Result: result, Message: res.Message}
		}
		var earliest time.Time
		for _, src := range r.TokenSources() {
			if exp := src.Expiry(); !exp.IsZero() && (earliest.IsZero() || exp.Before(earliest)) {
				earliest = exp
			}
		}
		if !earliest.IsZero() {
			rr.TokenExpiresAt = earliest.UTC().Format(time.RFC3339)
		}
		rep.Registries = append(rep.Registries, rr)
	}
	var rejectedOnly []string
	for name := range byReg {
		if !seen[name] {
			rejectedOnly = append(rejectedOnly, name)
		}
	}
	sort.Strings(rejectedOnly)
	for _, name := range rejectedOnly {
		rep.Registries = append(rep.Registries, RegistryReport{Name: name, Valid: false, Problems: byReg[name]})
	}
	return rep
}
