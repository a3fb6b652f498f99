package robusta

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/sinks"
)

// secretRef stands for a secret parameter in a converted sink: medic.yaml
// gets `<key>_file: <path>`, the Helm values `<key>: {secretKeyRef: …}`.
// The value itself is never kept.
type secretRef struct {
	key string // medic's parameter: routing_key
	sk  string // the Secret's key (and the chart's file name)
}

// pair is one key of a converted sink; item is the index of the report
// item it came from (-1: none), so that dropping the key updates it.
type pair struct {
	key  string
	val  any
	item int
}

type sinkSpec struct{ pairs []pair }

// slackToken is medic's one Slack bot token: every Robusta slack_sink has
// its own api_key, medic posts with slack.bot_token.
type slackToken struct {
	value string // kept only to compare the sinks' tokens, never written
	where string
}

var envRefRE = regexp.MustCompile(`^\s*\{\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$`)

var sinkNameRE = regexp.MustCompile(`[^a-z0-9_-]+`)

func (c *converter) convertSinks(v any) []sinkSpec {
	var out []sinkSpec
	used := map[string]bool{}
	for i, item := range asList(v) {
		where := fmt.Sprintf("sinksConfig[%d]", i)
		spec, name, ok := c.convertSink(where, item, used)
		if ok {
			used[name] = true
			out = append(out, spec)
		}
		// A Robusta sink with stop: true keeps what it receives from the
		// sinks after it; when medic does not keep that stop, the later
		// sinks would receive more.
		if _, p, _ := single(item); c.stopLost == "" && p != nil && p["stop"] == true && (!ok || !spec.has("stop")) {
			c.stopLost = where
		}
	}
	return out
}

// convertSink converts one sink and records it and its parameters.
func (c *converter) convertSink(where string, item any, used map[string]bool) (sinkSpec, string, bool) {
	var ic itemConv
	first := len(c.res.Items)
	c.res.Items = append(c.res.Items, Item{}) // the sink's own item, filled in at the end
	params := map[int]*itemConv{}             // index in c.res.Items → its conversion
	var secrets []Secret
	typ, p, ok := single(item)
	finish := func(spec sinkSpec, name string, ok bool) (sinkSpec, string, bool) {
		if !ok && len(ic.failed) == 0 {
			ic.fail("not converted")
		}
		for idx, pc := range params {
			if !ok {
				pc.fail("its sink is not converted")
			}
			it := c.res.Items[idx]
			c.res.Items[idx] = pc.item(it.Kind, it.Where, it.Name, it.Target)
		}
		if ok {
			for _, idx := range sortedKeys(params) {
				if it := c.res.Items[idx]; it.Outcome != Converted {
					ic.lose("parameter %q %s", it.Name, strings.ReplaceAll(string(it.Outcome), "_", " "))
				}
			}
			c.res.Secrets = append(c.res.Secrets, secrets...)
		}
		target := ""
		if ok {
			target = name
		}
		c.res.Items[first] = ic.item(KindSink, where, typ, target)
		return spec, name, ok
	}
	if !ok {
		typ = fmt.Sprint(item)
		ic.fail("not a sink (`- slack_sink: {name: …}`)")
		return finish(sinkSpec{}, "", false)
	}
	rname, _ := p["name"].(string)
	if rname != "" {
		where = fmt.Sprintf("%s (%s)", where, rname)
	}
	// Every parameter is an item of the report.
	paramIdx := map[string]int{}
	for _, k := range sortedKeys(p) {
		if k == "name" {
			continue
		}
		paramIdx[k] = len(c.res.Items)
		params[len(c.res.Items)] = &itemConv{}
		c.res.Items = append(c.res.Items, Item{Kind: KindSinkParam, Where: where, Name: k})
	}
	setTarget := func(k, target string) {
		if idx, ok := paramIdx[k]; ok {
			c.res.Items[idx].Target = target
		}
	}

	row, known := sinkRows[typ]
	switch {
	case !known:
		ic.fail("medic has no equivalent of `%s`", typ)
		ic.todo = "open an issue, or send to it through the `webhook` sink"
		return finish(sinkSpec{}, "", false)
	case row.medic == "":
		ic.fail("medic has no equivalent of `%s`", typ)
		ic.todo = row.todo
		return finish(sinkSpec{}, "", false)
	case !slices.Contains(c.opts.SinkTypes, row.medic):
		ic.fail("medic lacks the `%s` sink type", row.medic)
		ic.todo = "wait for a medic that has it and import again, or send through the `webhook` sink"
		return finish(sinkSpec{}, "", false)
	}
	medicType := row.medic
	if typ == "file_sink" && p["file_name"] == nil && slices.Contains(c.opts.SinkTypes, "stdout") {
		medicType = "stdout" // Robusta's file_sink without a file prints to the log
	}

	name := strings.Trim(sinkNameRE.ReplaceAllString(strings.ToLower(rname), "-"), "-_")
	if name == "" {
		name = strings.TrimSuffix(typ, "_sink")
	}
	if len(name) > 64 {
		name = strings.Trim(name[:64], "-_")
	}
	for base, n := name, 2; used[name]; n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}

	spec := sinkSpec{pairs: []pair{{key: "name", val: name, item: -1}, {key: "type", val: medicType, item: -1}}}
	for _, k := range sortedKeys(row.set) {
		spec.pairs = append(spec.pairs, pair{key: k, val: row.set[k], item: -1})
	}
	addSecret := func(k, medicKey string, v any) {
		ref := secretRef{key: medicKey, sk: secretKeyOf(name, medicKey)}
		spec.pairs = append(spec.pairs, pair{key: medicKey, val: ref, item: paramIdx[k]})
		setTarget(k, medicKey+"_file")
		s := Secret{Where: where + "." + k, SecretName: SecretName, SecretKey: ref.sk, File: secretPath(name, medicKey)}
		if m := envRefRE.FindStringSubmatch(fmt.Sprint(v)); m != nil {
			s.FromEnv = m[1]
		}
		secrets = append(secrets, s)
	}

	usedKeys := map[string]bool{"name": true}
	for _, k := range sortedKeys(row.convert) {
		v, ok := p[k]
		if !ok {
			continue
		}
		usedKeys[k] = true
		pc := params[paramIdx[k]]
		pairs := row.convert[k](pc, v)
		if len(pc.failed) > 0 {
			ic.fail("%s: %s", k, strings.Join(pc.failed, "; "))
			return finish(sinkSpec{}, "", false)
		}
		var targets []string
		for i := 0; i+1 < len(pairs); i += 2 {
			key := pairs[i].(string)
			target := key
			if ref, ok := pairs[i+1].(secretRef); ok {
				ref.sk = secretKeyOf(name, ref.key)
				pairs[i+1] = ref
				secrets = append(secrets, Secret{Where: where + "." + k, SecretName: SecretName, SecretKey: ref.sk, File: secretPath(name, ref.key)})
				target += "_file"
			}
			targets = append(targets, target)
			spec.pairs = append(spec.pairs, pair{key: key, val: pairs[i+1], item: paramIdx[k]})
		}
		setTarget(k, strings.Join(targets, ", "))
	}

	for _, k := range sortedKeys(p) {
		if usedKeys[k] {
			continue
		}
		v := p[k]
		pc := params[paramIdx[k]]
		switch {
		case k == "default":
			spec.pairs = append(spec.pairs, pair{key: "default", val: v, item: paramIdx[k]})
			setTarget(k, "default")
		case k == "api_key" && typ == "slack_sink":
			c.slackAPIKey(where, pc, v)
			setTarget(k, "slack.bot_token_file")
		case k == "scope":
			sc, err := convertScope(v)
			if err != nil {
				pc.fail("scope: %v", err)
				ic.fail("its scope cannot be converted: without it the sink would receive more than before")
				ic.todo = "rewrite the scope with medic's include/exclude rules (docs/configuration.md: name, namespace, severity, identifier, labels, annotations) and add it to the sink by hand"
				return finish(sinkSpec{}, "", false)
			}
			spec.pairs = append(spec.pairs, pair{key: "scope", val: sc, item: paramIdx[k]})
			setTarget(k, "scope")
		case k == "grouping" && medicType == "slack":
			g, err := slackGrouping(v)
			if err != nil {
				pc.lose("grouping: %v; findings are posted one by one", err)
				continue
			}
			for _, gk := range sortedKeys(g) {
				spec.pairs = append(spec.pairs, pair{key: gk, val: g[gk], item: paramIdx[k]})
			}
			setTarget(k, "group_by, interval")
		default:
			target := k
			if t, ok := row.params[k]; ok {
				target = t
			}
			if slices.Contains(row.secrets, target) {
				addSecret(k, target, v)
				continue
			}
			spec.pairs = append(spec.pairs, pair{key: target, val: v, item: paramIdx[k]})
			setTarget(k, target)
		}
	}

	// Drop what medic's sink does not know, and decide whether that loses
	// something or widens what the sink receives.
	for range 40 {
		var s sinks.Spec
		err := spec.node(false).Decode(&s)
		if err == nil {
			err = s.Validate(c.opts.Sinks)
		}
		if err == nil && c.stopLost != "" {
			ic.fail("%s stops notifications before this sink (stop: true) and medic does not keep that stop: this sink would receive more than before", c.stopLost)
			ic.todo = "give this sink a scope that excludes what the stopping sink receives"
			return finish(sinkSpec{}, "", false)
		}
		if err == nil {
			c.sinkNames[rname] = name
			return finish(spec, name, true)
		}
		key := strings.TrimSuffix(unknownParam(err), "_file")
		i := slices.IndexFunc(spec.pairs, func(p pair) bool { return p.key == key })
		if key == "" || i < 0 || spec.pairs[i].item < 0 {
			ic.fail("the converted sink does not load in medic: %v", err)
			return finish(sinkSpec{}, "", false)
		}
		dropped := spec.pairs[i]
		spec.pairs = slices.Delete(spec.pairs, i, i+1)
		pc := params[dropped.item]
		robustaKey := c.res.Items[dropped.item].Name
		if widens(robustaKey, p[robustaKey]) {
			pc.fail("medic's %s sink has no `%s`", medicType, key)
			ic.fail("medic's %s sink has no `%s`: without it the sink would receive more than before", medicType, key)
			ic.todo = "keep the sink in Robusta until medic has it, or narrow the sink with a scope"
			return finish(sinkSpec{}, "", false)
		}
		c.res.Items[dropped.item].Target = ""
		pc.lose("medic's %s sink has no `%s`", medicType, key)
	}
	ic.fail("too many unknown parameters")
	return finish(sinkSpec{}, "", false)
}

// widens says whether dropping a sink's key lets the sink receive more.
func widens(key string, v any) bool {
	if key == "send_resolved" {
		b, _ := v.(bool)
		return !b // dropping send_resolved: false would send resolved notifications
	}
	return sinkRoutingKeys[key]
}

func (c *converter) slackAPIKey(where string, pc *itemConv, v any) {
	val := fmt.Sprint(v)
	if c.slack == nil {
		c.slack = &slackToken{value: val, where: where}
		s := Secret{Where: where + ".api_key", SecretName: SecretName, SecretKey: "slack-bot-token", File: slackBotTokenPath}
		if m := envRefRE.FindStringSubmatch(val); m != nil {
			s.FromEnv = m[1]
		}
		c.res.Secrets = append(c.res.Secrets, s)
		return
	}
	if val != c.slack.value {
		pc.lose("medic posts to Slack with one bot token (slack.botToken, taken from %s); this sink's token differs: invite that bot to its channel", c.slack.where)
	}
}

// slackGrouping converts Robusta's grouping {group_by, interval} to the
// slack sink's group_by and interval.
func slackGrouping(v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a mapping")
	}
	out := map[string]any{}
	var by []any
	for _, g := range asList(m["group_by"]) {
		switch x := g.(type) {
		case string:
			by = append(by, x)
		case map[string]any:
			for _, l := range stringsOf(x["labels"]) {
				by = append(by, "labels."+l)
			}
			if len(x) != 1 || x["labels"] == nil {
				return nil, fmt.Errorf("group_by %v is not supported", x)
			}
		}
	}
	if len(by) == 0 {
		return nil, fmt.Errorf("no group_by")
	}
	out["group_by"] = by
	if iv, ok := m["interval"]; ok {
		n, err := strconv.Atoi(fmt.Sprint(iv))
		if err != nil {
			return nil, fmt.Errorf("interval %v is not seconds", iv)
		}
		out["interval"] = (time.Duration(n) * time.Second).String()
	}
	for _, k := range sortedKeys(m) {
		if k != "group_by" && k != "interval" {
			return nil, fmt.Errorf("%q is not supported", k)
		}
	}
	return out, nil
}

// mailParams parses mail_sink's Apprise URL
// (mailtos://user:password@smtp.example.com:587?from=a@x&to=b@y,c@y) into
// the email sink's host, port, username, password (a secret), from and to.
func mailParams(c *itemConv, v any) []any {
	raw, _ := v.(string)
	if raw == "" {
		c.fail("an Apprise mailto:// or mailtos:// URL is required")
		return nil
	}
	if !strings.Contains(raw, "?") {
		// Apprise also takes mailtos://user:pw@server&from=…&to=…
		raw = strings.Replace(raw, "&", "?", 1)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "mailto" && u.Scheme != "mailtos") || u.Hostname() == "" {
		c.fail("not an Apprise mailto:// or mailtos:// URL")
		return nil
	}
	q := u.Query()
	host := u.Hostname()
	if s := q.Get("smtp"); s != "" {
		host = s
	}
	port := 25
	if u.Scheme == "mailtos" {
		port = 587
	}
	if u.Port() != "" {
		port, _ = strconv.Atoi(u.Port())
	}
	user := u.User.Username()
	from := q.Get("from")
	if from == "" && user != "" {
		from = user
		if !strings.Contains(from, "@") {
			from += "@" + u.Hostname()
		}
	}
	var to []any
	for _, t := range strings.FieldsFunc(q.Get("to"), func(r rune) bool { return r == ',' || r == ' ' }) {
		to = append(to, t)
	}
	if len(to) == 0 && from != "" {
		to = []any{from}
	}
	pairs := []any{"host", host, "port", port}
	switch {
	case port == 465:
		pairs = append(pairs, "implicit_tls", true)
	case u.Scheme == "mailto":
		// Apprise's mailto:// does not require TLS; medic's email sink
		// requires STARTTLS unless told otherwise.
		pairs = append(pairs, "insecure_skip_starttls", true)
		c.lose("mailto:// (no TLS) kept as insecure_skip_starttls: switch to STARTTLS if the server offers it")
	}
	if user != "" {
		pairs = append(pairs, "username", user)
	}
	if _, ok := u.User.Password(); ok {
		pairs = append(pairs, "password", secretRef{key: "password"})
	}
	pairs = append(pairs, "from", from, "to", to)
	for k := range q {
		switch k {
		case "from", "to", "smtp":
		default:
			c.lose("mailto option %q dropped", k)
		}
	}
	return pairs
}

// kafkaBrokers splits kafka_sink's kafka_url (host:port[,host:port…]).
func kafkaBrokers(c *itemConv, v any) []any {
	var out []any
	for _, b := range strings.Split(fmt.Sprint(v), ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		c.fail("no broker")
	}
	return []any{"brokers", out}
}

// kafkaAuth converts kafka_sink's auth (kafka-python's producer options):
// SASL mechanism, user and password (a secret), TLS.
func kafkaAuth(c *itemConv, v any) []any {
	m, ok := v.(map[string]any)
	if !ok {
		c.fail("not a mapping")
		return nil
	}
	var pairs []any
	for _, k := range sortedKeys(m) {
		switch k {
		case "security_protocol":
			switch fmt.Sprint(m[k]) {
			case "SSL", "SASL_SSL":
				pairs = append(pairs, "tls", true)
			case "PLAINTEXT", "SASL_PLAINTEXT":
			default:
				c.fail("security_protocol %v is not SSL, SASL_SSL, PLAINTEXT or SASL_PLAINTEXT", m[k])
			}
		case "sasl_mechanism":
			pairs = append(pairs, "sasl_mechanism", m[k])
		case "sasl_plain_username":
			pairs = append(pairs, "username", m[k])
		case "sasl_plain_password":
			pairs = append(pairs, "password", secretRef{key: "password"})
		case "ssl_cafile":
			pairs = append(pairs, "ca_file", m[k])
		default:
			c.lose("auth.%s dropped: medic's kafka sink has no such option", k)
		}
	}
	return pairs
}

// node renders the sink for medic.yaml (helm false: secrets as *_file
// paths) or the Helm values (helm true: secrets as secretKeyRef).
func (s sinkSpec) node(helm bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	name := ""
	for _, p := range s.pairs {
		if p.key == "name" {
			name = fmt.Sprint(p.val)
		}
	}
	for _, p := range s.pairs {
		key, val := p.key, p.val
		if ref, ok := val.(secretRef); ok {
			if helm {
				val = map[string]any{"secretKeyRef": map[string]any{"name": SecretName, "key": ref.sk}}
			} else {
				key, val = ref.key+"_file", secretPath(name, ref.key)
			}
		}
		var k, v yaml.Node
		_ = k.Encode(key)
		_ = v.Encode(val)
		n.Content = append(n.Content, &k, &v)
	}
	return n
}

func (s sinkSpec) has(key string) bool {
	return slices.ContainsFunc(s.pairs, func(p pair) bool { return p.key == key })
}
