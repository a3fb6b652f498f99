package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/promql"
	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/agent/mcptools"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/kube"
	"github.com/medichq/medic/internal/version"
	"github.com/medichq/medic/knowledge"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/embedded"
	"github.com/medichq/medic/rag/gitsource"
	"github.com/medichq/medic/rag/kvcache"
	"github.com/medichq/medic/rag/llm"
	"github.com/medichq/medic/rag/weaviate"
)

// Knowledge is medic's knowledge base and model, assembled from the ai and
// knowledge_base settings. `medic serve` builds one for the ask_ai and
// runbook_enricher actions; `medic kb` and `medic ask` build their own.
type Knowledge struct {
	Store     rag.Store
	Retriever *rag.Retriever
	// Service answers; its Chat is nil when no chat model is configured,
	// and it then answers rag.ErrNotConfigured.
	Service  *rag.Service
	Embedder rag.Embedder // nil without an embedding model
	Redactor *rag.Redactor
	// Answerer is what every AI feature calls: the investigation (package
	// agent) once Investigate was called with the actions' environment,
	// else Service.
	Answerer rag.Answerer
	// Actions builds the actions behind the investigation's evidence tools
	// (agent.Toolbox.Actions); whoever opens the Knowledge sets it, from
	// the registries it built (internal/plugins.Builtin).
	Actions *actions.Registry

	client *llm.Client // nil without a model
	mcp    []*mcptools.Session

	cfg    config.Config
	logger *slog.Logger
}

// ModelClient builds the OpenAI-compatible client from the ai settings, or
// returns nil when no model is configured.
func ModelClient(c config.AIConfig) (*llm.Client, error) {
	if c.ChatModel == "" && c.EmbeddingModel == "" {
		return nil, nil
	}
	return llm.New(llm.Config{
		BaseURL:        c.BaseURL,
		APIKey:         c.APIKey,
		ChatModel:      c.ChatModel,
		EmbeddingModel: c.EmbeddingModel,
		Timeout:        c.Timeout,
		MaxRetries:     c.MaxRetries,
		MaxTokens:      c.MaxTokens,
		// The prompt builder keeps to the budget; the client's check is a
		// backstop with room for the estimate's error.
		TokenBudget: c.TokenBudget + c.TokenBudget/4,
	})
}

// OpenStore opens the configured knowledge-base store.
func OpenStore(ctx context.Context, cfg config.Config) (rag.Store, error) {
	kb := cfg.KnowledgeBase
	switch kb.Store {
	case "weaviate":
		return weaviate.Open(ctx, weaviate.Options{
			URL:        kb.Weaviate.URL,
			APIKey:     kb.Weaviate.APIKey,
			Collection: kb.Weaviate.Collection,
			Tenant:     kb.Weaviate.Tenant,
			Alpha:      kb.Weaviate.Alpha,
			Synonyms:   kb.Synonyms,
		})
	default:
		s, err := embedded.Open(embedded.Options{Dir: cfg.KBDir(), Alpha: kb.Alpha, AlphaSet: true, Synonyms: kb.Synonyms})
		if err != nil {
			return nil, fmt.Errorf("knowledge_base: %w", err)
		}
		return s, nil
	}
}

// OpenKnowledge opens the store and builds the model client, the retriever
// and the answer service. js, when not nil, holds the answer cache.
func OpenKnowledge(ctx context.Context, cfg config.Config, js jetstream.JetStream, logger *slog.Logger) (*Knowledge, error) {
	red, err := cfg.Redactor() // the rules every sink's findings pass through
	if err != nil {
		return nil, err
	}
	client, err := ModelClient(cfg.AI)
	if err != nil {
		return nil, fmt.Errorf("ai: %w", err)
	}
	store, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("knowledge base: %w", err)
	}
	return newKnowledge(ctx, cfg, store, client, red, js, logger)
}

// newKnowledge assembles the parts; store may be nil (no knowledge base:
// answers cite nothing).
func newKnowledge(ctx context.Context, cfg config.Config, store rag.Store, client *llm.Client, red *rag.Redactor,
	js jetstream.JetStream, logger *slog.Logger) (*Knowledge, error) {
	k := &Knowledge{Store: store, Redactor: red, cfg: cfg, logger: logger, client: client}
	if client != nil && cfg.AI.EmbeddingModel != "" {
		k.Embedder = client
	}
	k.Retriever = &rag.Retriever{Store: store, Embedder: k.Embedder, Redactor: red, Logger: logger}
	k.Service = &rag.Service{
		Retriever:   k.Retriever,
		Redactor:    red,
		TokenBudget: cfg.AI.TokenBudget,
		MaxTokens:   cfg.AI.MaxTokens,
		TopK:        cfg.KnowledgeBase.TopK,
		Logger:      logger,
	}
	if client != nil && cfg.AI.ChatModel != "" {
		k.Service.Chat = chatModels{client}
		if js != nil && cfg.AI.CacheTTL > 0 {
			cache, err := kvcache.New(ctx, js, kvcache.DefaultBucket, cfg.AI.CacheTTL)
			if err != nil {
				if store != nil {
					_ = store.Close()
				}
				return nil, fmt.Errorf("ai answer cache: %w", err)
			}
			k.Service.Cache = cache
		}
	}
	k.Answerer = k.Service
	return k, nil
}

// Investigate makes the answers investigations: with a chat model and
// ai.agent.enabled, Answerer becomes the tool-calling loop over env's
// clients and the knowledge base (the one-shot Service answers for models
// without tool calling). It returns the Answerer.
func (k *Knowledge) Investigate(env *actions.Env) rag.Answerer {
	if inv := k.Investigator(env); inv != nil {
		k.Answerer = inv
	}
	return k.Answerer
}

// Investigator is the investigation over env, or nil when no chat model is
// configured or ai.agent.enabled is false.
func (k *Knowledge) Investigator(env *actions.Env) *agent.Investigator {
	ai := k.cfg.AI
	if k.client == nil || ai.ChatModel == "" || !ai.Agent.Enabled {
		return nil
	}
	return &agent.Investigator{
		Model:     chatTools{k.client},
		ModelName: ai.ChatModel,
		OneShot:   k.Service,
		Toolbox:   k.Toolbox(env),
		Redactor:  k.Redactor,
		Limits: agent.Limits{
			MaxSteps: ai.Agent.MaxSteps, MaxToolOutput: ai.Agent.MaxToolOutput,
			MaxTokens: ai.Agent.MaxTotalTokens, Timeout: ai.Agent.Timeout,
		},
		Language:  ai.Language,
		MaxTokens: ai.MaxTokens,
		Logger:    k.logger,
	}
}

// Toolbox is the investigation's tools over env: medic's evidence actions
// and knowledge base, and the tools of the MCP servers ConnectMCP reached.
func (k *Knowledge) Toolbox(env *actions.Env) agent.Toolbox {
	ns := k.cfg.AI.Agent.Namespaces
	tb := agent.Toolbox{Actions: k.Actions, Env: env, KB: k.Retriever, TopK: k.cfg.KnowledgeBase.TopK, Policy: agent.NamespacePolicy{Allow: ns.Allow, Deny: ns.Deny}}
	if am := k.cfg.Alertmanager; am.URL != "" {
		tb.Alertmanager = &agent.Alertmanager{URL: am.URL, Token: fileToken("alertmanager.bearer_token_file", am.BearerTokenFile),
			HTTPClient: &http.Client{Timeout: am.Timeout}}
	}
	for _, s := range k.mcp {
		tb.Extra = append(tb.Extra, s.Tools...)
	}
	return tb
}

// fileToken reads a bearer token from path on every use, so a rotated
// token works; nil without a path.
func fileToken(field, path string) func() (string, error) {
	if path == "" {
		return nil
	}
	return func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
}

// ConnectMCP connects to the MCP servers of ai.agent.mcp_servers, whose
// tools the investigation then offers. A server that cannot be reached is
// logged and left out: the investigation works without it.
func (k *Knowledge) ConnectMCP(ctx context.Context, version string) {
	for _, m := range k.cfg.AI.Agent.MCPServers {
		spec := mcptools.ServerSpec{Name: m.Name, URL: m.URL, Env: m.Env, Tools: m.Tools}
		if len(m.Command) > 0 {
			spec.Command, spec.Args = m.Command[0], m.Command[1:]
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		s, err := mcptools.Connect(cctx, spec, version)
		cancel()
		if err != nil {
			k.logger.Error("MCP server unavailable; investigating without its tools", "mcp_server", m.Name, "err", err)
			continue
		}
		k.logger.Info("MCP server connected", "mcp_server", m.Name, "tools", len(s.Tools))
		k.mcp = append(k.mcp, s)
	}
}

// ToolsEnv is what the investigation's tools read outside medic serve
// (medic investigate, medic ask): the cluster of kubernetes.* or
// $KUBECONFIG and the Prometheus of prometheus.url. Without a cluster it
// says why; the cluster tools then answer so.
func ToolsEnv(cfg config.Config, logger *slog.Logger) (env *actions.Env, noCluster string, err error) {
	env = &actions.Env{Logger: logger, ClusterName: cfg.ClusterName}
	clients, why, err := kube.Load(cfg.Kubernetes, nil)
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes: %w", err)
	}
	if clients != nil {
		env.Kube, env.Dynamic = clients.Kube, clients.Dynamic
	}
	if cfg.Prometheus.URL != "" {
		pc := promql.Config{URL: cfg.Prometheus.URL, BearerTokenFile: cfg.Prometheus.BearerTokenFile, Timeout: cfg.Prometheus.Timeout}
		if env.Prometheus, err = promql.NewAPI(pc); err != nil {
			return nil, "", fmt.Errorf("prometheus: %w", err)
		}
	}
	return env, why.Reason, nil
}

// chatTools gives each request its own immutable client when it names
// another model, as chatModels does.
type chatTools struct{ c *llm.Client }

func (m chatTools) CompleteTools(ctx context.Context, req llm.ToolRequest) (llm.ToolResponse, error) {
	return m.c.WithChatModel(req.Model).CompleteTools(ctx, req)
}

// chatModels gives each request its own immutable client when it names
// another model (ask_ai's model parameter).
type chatModels struct{ c *llm.Client }

func (m chatModels) Complete(ctx context.Context, req rag.ChatRequest) (rag.ChatResponse, error) {
	return m.c.WithChatModel(req.Model).Complete(ctx, req)
}

func (m chatModels) Stream(ctx context.Context, req rag.ChatRequest, onDelta func(string) error) (rag.ChatResponse, error) {
	return m.c.WithChatModel(req.Model).Stream(ctx, req, onDelta)
}

func (m chatModels) ChatModel() string { return m.c.ChatModel() }

// Close closes the MCP sessions and the store.
func (k *Knowledge) Close() error {
	var errs []error
	for _, s := range k.mcp {
		errs = append(errs, s.Close())
	}
	k.mcp = nil
	if k.Store != nil {
		errs = append(errs, k.Store.Close())
	}
	return errors.Join(errs...)
}

// Ingester returns an ingester that embeds with the configured model.
func (k *Knowledge) Ingester(p rag.Progress) *rag.Ingester {
	return &rag.Ingester{Store: k.Store, Embedder: k.Embedder, Progress: p, Redactor: k.Redactor}
}

// IngestDefaultIfEmpty ingests the runbooks shipped with medic when the
// store holds nothing (and knowledge_base.default_runbooks is on).
func (k *Knowledge) IngestDefaultIfEmpty(ctx context.Context, p rag.Progress) (rag.IngestReport, bool, error) {
	if !k.cfg.KnowledgeBase.DefaultRunbooks {
		return rag.IngestReport{}, false, nil
	}
	srcs, err := k.Store.Sources(ctx)
	if err != nil {
		return rag.IngestReport{}, false, err
	}
	if len(srcs) > 0 {
		return rag.IngestReport{}, false, nil
	}
	in := k.Ingester(p)
	in.URLFor = knowledge.RunbookURL
	rep, err := in.Ingest(ctx, knowledge.Root, knowledge.Runbooks())
	return rep, true, err
}

// IngestSource ingests a folder or a Git URL ("URL#branch").
func (k *Knowledge) IngestSource(ctx context.Context, src string, p rag.Progress) (rag.IngestReport, error) {
	in := k.Ingester(p)
	if gitsource.IsURL(src) {
		co, err := gitsource.Clone(ctx, src)
		if err != nil {
			return rag.IngestReport{Root: gitsource.Redact(src)}, err
		}
		defer co.Close()
		in.URLFor = co.URLFor
		return in.Ingest(ctx, co.Root, co.FS)
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return rag.IngestReport{Root: src}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return rag.IngestReport{Root: abs}, err
	}
	if !fi.IsDir() {
		return rag.IngestReport{Root: abs}, fmt.Errorf("%s is not a folder (ingest the folder that holds it)", src)
	}
	return in.Ingest(ctx, abs, os.DirFS(abs))
}

// RebuildIfStale re-embeds the whole knowledge base when its vectors come
// from another embedding model than the configured one (one vector index
// cannot mix models): it empties the store and ingests every root again —
// the default runbooks, folders that still exist, Git URLs. Roots it cannot
// read again are reported and left out.
func (k *Knowledge) RebuildIfStale(ctx context.Context, p rag.Progress) (bool, error) {
	if k.Store == nil || k.Embedder == nil {
		return false, nil
	}
	stale, err := rag.StaleEmbeddings(ctx, k.Store, k.Embedder.EmbeddingModel())
	if err != nil || !stale {
		return false, err
	}
	srcs, err := k.Store.Sources(ctx)
	if err != nil {
		return false, err
	}
	var roots []string
	for _, s := range srcs {
		if len(roots) == 0 || roots[len(roots)-1] != s.Root {
			roots = append(roots, s.Root)
		}
	}
	k.logger.Warn("the knowledge base was embedded with another model; rebuilding it",
		"embedding_model", k.Embedder.EmbeddingModel(), "roots", len(roots))
	if err := k.Store.DeleteAll(ctx); err != nil {
		return false, err
	}
	var errs []error
	for _, root := range roots {
		var err error
		if root == knowledge.Root {
			in := k.Ingester(p)
			in.URLFor = knowledge.RunbookURL
			_, err = in.Ingest(ctx, knowledge.Root, knowledge.Runbooks())
		} else {
			_, err = k.IngestSource(ctx, root, p)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("re-ingest %s: %w", root, err))
		}
	}
	return true, errors.Join(errs...)
}

// ingestAtStart brings the knowledge base up to date in the background:
// the default runbooks into an empty store, then every configured source.
// Failures are logged; AI features work with what is there.
func (k *Knowledge) ingestAtStart(ctx context.Context) {
	if k.Store == nil {
		return
	}
	if _, err := k.RebuildIfStale(ctx, nil); err != nil {
		k.logger.Error("rebuilding the knowledge base for the new embedding model", "err", err)
	}
	k.ingestDefault(ctx)
	for _, src := range k.cfg.KnowledgeBase.Sources {
		if ctx.Err() != nil {
			return
		}
		rep, err := k.IngestSource(ctx, src, nil)
		if err != nil {
			k.logger.Error("could not ingest a knowledge-base source", "source", gitsource.Redact(src), "err", err)
			continue
		}
		k.logger.Info("knowledge-base source ingested", "source", rep.Root, "added", rep.Added, "updated", rep.Updated,
			"unchanged", rep.Unchanged, "deleted", rep.Deleted, "chunks", rep.Chunks, "duration", rep.Duration.Round(time.Millisecond))
	}
}

// ingestDefault ingests the default runbooks into an empty store and logs
// how many chunks it took and how long.
func (k *Knowledge) ingestDefault(ctx context.Context) {
	start := time.Now()
	rep, did, err := k.IngestDefaultIfEmpty(ctx, nil)
	switch {
	case err != nil:
		k.logger.Error("could not ingest the default runbooks", "err", err)
	case did:
		k.logger.Info("ingested the default runbooks into the empty knowledge base",
			"files", rep.Files, "chunks", rep.Chunks, "duration", time.Since(start).Round(time.Millisecond),
			"embedding_model", k.cfg.AI.EmbeddingModel)
	}
}

// initKnowledge opens the knowledge base for `medic serve`. An unreachable
// Weaviate must not keep medic from delivering findings: the AI actions
// then say the knowledge base is unavailable.
func (a *App) initKnowledge(ctx context.Context) (*Knowledge, error) {
	logger := a.logger.With("component", "ai")
	k, err := OpenKnowledge(ctx, a.cfg, a.bus.JetStream(), logger)
	if err != nil {
		if a.cfg.KnowledgeBase.Store != "weaviate" && !strings.Contains(err.Error(), "in use by another process") {
			return nil, err
		}
		// An unreachable Weaviate (or a store held by `medic kb ingest`)
		// must not keep findings from being delivered.
		logger.Error("knowledge base unavailable; runbook_enricher will say so and ask_ai answers without runbooks", "err", err)
		red, rerr := a.cfg.Redactor()
		client, cerr := ModelClient(a.cfg.AI)
		if rerr != nil || cerr != nil {
			return nil, errors.Join(rerr, cerr)
		}
		if k, err = newKnowledge(ctx, a.cfg, nil, client, red, a.bus.JetStream(), logger); err != nil {
			return nil, err
		}
	}
	if k.Service.Configured() {
		logger.Info("AI explanations on", "chat_model", a.cfg.AI.ChatModel, "embedding_model", a.cfg.AI.EmbeddingModel,
			"base_url", firstSet(a.cfg.AI.BaseURL, llm.OpenAIBaseURL), "cache_ttl", a.cfg.AI.CacheTTL)
	} else {
		logger.Info("AI is not configured (ai.chat_model); ask_ai will say so, runbook_enricher works")
	}
	return k, nil
}

// attachKnowledge opens the knowledge base and gives it to the actions.
// Without one, env.KB stays nil and env.AI answers "AI is not configured"
// or the reason the knowledge base is missing.
func (a *App) attachKnowledge(ctx context.Context, env *actions.Env) error {
	k, err := a.initKnowledge(ctx)
	if err != nil {
		return err
	}
	a.kb = k
	k.Actions = a.plugins.Actions
	if k.Store != nil {
		env.KB = k.Retriever
		if k.Embedder == nil {
			k.ingestDefault(ctx) // see startKnowledge
		}
	}
	if k.client != nil && a.cfg.AI.Agent.Enabled {
		k.ConnectMCP(ctx, version.Version)
	}
	env.AI = k.Investigate(env)
	return nil
}

// startKnowledge ingests the default runbooks (into an empty store) and the
// configured sources. Without an embedding model the default runbooks take
// well under a second and are ingested before the first event is handled;
// with one (a model server can be slow or down) everything happens in the
// background.
func (a *App) startKnowledge(ctx context.Context) {
	if a.kb == nil || a.kb.Store == nil {
		return
	}
	a.startup.Add(1)
	a.wg.Go(func() {
		defer a.startup.Done()
		a.kb.ingestAtStart(ctx)
	})
}

func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
