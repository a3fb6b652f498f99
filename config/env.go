package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every environment variable medic reads.
const EnvPrefix = "MEDIC_"

// applyEnv overlays MEDIC_* variables on cfg. A variable's name is the YAML
// path in upper case joined by underscores: http.addr is MEDIC_HTTP_ADDR,
// bus.dedup_window is MEDIC_BUS_DEDUP_WINDOW. Lists are comma-separated.
// Sinks are not reachable from the environment; they are structured and
// belong in the file.
//
// A hand-written walker rather than a library: the rule fits in a page, it
// derives names from the same yaml tags as the file, and an unknown MEDIC_
// variable can be reported as the typo it usually is. Unknown variables are
// warnings, not errors: Kubernetes injects MEDIC_PORT, MEDIC_SERVICE_HOST, …
// for a Service named medic.
func applyEnv(cfg *Config, environ []string) error {
	fields := map[string]reflect.Value{}
	collectEnvFields(reflect.ValueOf(cfg).Elem(), strings.TrimSuffix(EnvPrefix, "_"), fields)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if ignoredEnv[name] {
			continue
		}
		field, ok := fields[name]
		if !ok {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("environment variable %s is not a medic setting; ignored", name))
			continue
		}
		if err := setFromString(field, value); err != nil {
			return fmt.Errorf("environment variable %s: %w", name, err)
		}
	}
	return nil
}

// ignoredEnv are MEDIC_ variables read by the CLI, not the server config.
var ignoredEnv = map[string]bool{
	"MEDIC_CONFIG": true, "MEDIC_SERVER": true, "MEDIC_TOKEN": true, "MEDIC_TOOLS_DIR": true,
}

// EnvNames lists every environment variable applyEnv understands, for docs.
func EnvNames() []string {
	cfg := Default()
	fields := map[string]reflect.Value{}
	collectEnvFields(reflect.ValueOf(&cfg).Elem(), strings.TrimSuffix(EnvPrefix, "_"), fields)
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	return names
}

var durationType = reflect.TypeFor[time.Duration]()

func collectEnvFields(v reflect.Value, prefix string, out map[string]reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		switch {
		case f.Type.Kind() == reflect.Struct:
			collectEnvFields(fv, name, out)
		case isEnvSettable(f.Type):
			out[name] = fv
		}
	}
}

func isEnvSettable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String || t.Elem() == durationType
	}
	return false
}

func setFromString(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	case reflect.Slice:
		var parts []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		out := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := setFromString(out.Index(i), p); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		v.Set(out)
	default:
		return fmt.Errorf("cannot set %s from the environment", v.Type())
	}
	return nil
}
