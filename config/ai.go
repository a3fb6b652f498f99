package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// AIConfig is the model medic asks for explanations: any OpenAI-compatible
// server (OpenAI, Ollama's /v1, vLLM, LiteLLM). Without chat_model every AI
// feature answers "AI is not configured" and everything else works.
type AIConfig struct {
	// BaseURL of the OpenAI-compatible API; empty means OpenAI
	// (https://api.openai.com/v1). Ollama: http://localhost:11434/v1.
	BaseURL string `yaml:"base_url"`
	APIKey  string `yaml:"api_key"`
	// APIKeyFile is read at start-up; it wins over APIKey.
	APIKeyFile string `yaml:"api_key_file"`
	// ChatModel turns AI explanations on (e.g. gpt-4o-mini, llama3.1:8b).
	ChatModel string `yaml:"chat_model"`
	// EmbeddingModel, when set, makes knowledge-base search hybrid (BM25 and
	// vectors), e.g. text-embedding-3-small, nomic-embed-text.
	EmbeddingModel string `yaml:"embedding_model"`
	// Timeout bounds one attempt of one model request.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRetries of a 429, a 5xx or a network error, with back-off.
	MaxRetries int `yaml:"max_retries"`
	// MaxTokens bounds an answer (ask_ai's max_tokens overrides it).
	MaxTokens int `yaml:"max_tokens"`
	// TokenBudget bounds a prompt: evidence is trimmed to fit.
	TokenBudget int `yaml:"token_budget"`
	// CacheTTL keeps answers in the JetStream KV bucket MEDIC_AI_ANSWERS,
	// keyed by evidence, model and knowledge-base version; 0 disables it.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// RedactPatterns are extra regular expressions whose matches (or first
	// group) are replaced by [REDACTED] before anything goes to a model.
	RedactPatterns []string `yaml:"redact_patterns"`
	// Language of every answer (de, zh-CN, …); empty is English.
	Language string `yaml:"language"`
	// Agent bounds the tool-calling investigation.
	Agent AgentConfig `yaml:"agent"`
}

// Enabled reports whether a chat model is configured.
func (c AIConfig) Enabled() bool { return c.ChatModel != "" }

// KnowledgeBaseConfig is where runbooks are kept and searched.
type KnowledgeBaseConfig struct {
	// Store is embedded (local files, no server) or weaviate.
	Store string `yaml:"store"`
	// Dir holds the embedded store; default <data_dir>/kb.
	Dir string `yaml:"dir"`
	// Alpha weighs vectors against BM25 in the embedded store's hybrid
	// search (0 = lexical only, 1 = vectors only).
	Alpha    float64        `yaml:"alpha"`
	Weaviate WeaviateConfig `yaml:"weaviate"`
	// DefaultRunbooks ingests the 108 runbooks shipped with medic (the
	// kube-prometheus alerts) into an empty knowledge base at start.
	DefaultRunbooks bool `yaml:"default_runbooks"`
	// Sources are folders or Git URLs ingested (incrementally) at start.
	Sources []string `yaml:"sources"`
	// TopK is how many runbooks runbook_enricher and ask_ai use by default.
	TopK int `yaml:"top_k"`
	// Synonyms are groups of words or phrases meaning the same thing to
	// on-call engineers ([["oom", "out of memory"], …]), added to the
	// built-in domain groups (rag/lexical.DefaultSynonyms, the one place
	// the defaults live): a search for one also searches the others. File
	// only (no environment variable).
	Synonyms [][]string `yaml:"synonyms"`
}

// WeaviateConfig reaches a Weaviate server.
type WeaviateConfig struct {
	URL string `yaml:"url"`
	// Collection (class) holding the chunks; created when missing.
	Collection string `yaml:"collection"`
	// Alpha is Weaviate's hybrid weight (0 = BM25 only, 1 = vectors only).
	Alpha      float64 `yaml:"alpha"`
	APIKey     string  `yaml:"api_key"`
	APIKeyFile string  `yaml:"api_key_file"`
	// Tenant, when set, makes the collection multi-tenant and keeps this
	// knowledge base in that tenant.
	Tenant string `yaml:"tenant"`
}

func defaultAI() AIConfig {
	return AIConfig{
		Timeout:     60 * time.Second,
		MaxRetries:  3,
		MaxTokens:   800,
		TokenBudget: 6000,
		CacheTTL:    24 * time.Hour,
		Agent:       defaultAgent(),
	}
}

func defaultKnowledgeBase() KnowledgeBaseConfig {
	return KnowledgeBaseConfig{
		Store:           "embedded",
		Alpha:           0.5,
		Weaviate:        WeaviateConfig{Collection: "MedicRunbooks", Alpha: 0.5},
		DefaultRunbooks: true,
		TopK:            3,
	}
}

// KBDir is the embedded store's folder.
func (c *Config) KBDir() string {
	if c.KnowledgeBase.Dir != "" {
		return c.KnowledgeBase.Dir
	}
	return filepath.Join(c.DataDir, "kb")
}

func readAISecrets(cfg *Config, read func(field, path string, dst *string) error) error {
	if err := read("ai.api_key_file", cfg.AI.APIKeyFile, &cfg.AI.APIKey); err != nil {
		return err
	}
	return read("knowledge_base.weaviate.api_key_file", cfg.KnowledgeBase.Weaviate.APIKeyFile, &cfg.KnowledgeBase.Weaviate.APIKey)
}

var weaviateClassRE = regexp.MustCompile(`^[A-Z][_0-9A-Za-z]*$`)

func (c *Config) validateAI() error {
	ai := &c.AI
	if ai.BaseURL != "" {
		u, err := url.Parse(ai.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("ai.base_url: %q is not an http(s) URL", ai.BaseURL)
		}
	}
	switch {
	case ai.BaseURL != "" && ai.ChatModel == "" && ai.EmbeddingModel == "":
		return errors.New("ai.chat_model: must be set when ai.base_url is (or remove ai.base_url)")
	case ai.Timeout <= 0:
		return errors.New("ai.timeout: must be positive")
	case ai.MaxRetries < 0:
		return errors.New("ai.max_retries: must not be negative")
	case ai.MaxTokens < 1:
		return errors.New("ai.max_tokens: must be at least 1")
	case ai.TokenBudget < 500:
		return errors.New("ai.token_budget: must be at least 500")
	case ai.CacheTTL < 0:
		return errors.New("ai.cache_ttl: must not be negative (0 disables the cache)")
	}
	for i, p := range ai.RedactPatterns {
		if _, err := regexp.Compile(p); err != nil {
			return fmt.Errorf("ai.redact_patterns[%d]: %w", i, err)
		}
	}
	if err := c.validateAgent(); err != nil {
		return err
	}
	kb := &c.KnowledgeBase
	switch kb.Store {
	case "embedded":
	case "weaviate":
		if kb.Weaviate.URL == "" {
			return errors.New("knowledge_base.weaviate.url: must be set when knowledge_base.store is weaviate")
		}
		u, err := url.Parse(kb.Weaviate.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("knowledge_base.weaviate.url: %q is not an http(s) URL", kb.Weaviate.URL)
		}
	default:
		return fmt.Errorf("knowledge_base.store: %q is not embedded or weaviate", kb.Store)
	}
	switch {
	case kb.Alpha < 0 || kb.Alpha > 1:
		return fmt.Errorf("knowledge_base.alpha: %v is outside 0..1", kb.Alpha)
	case kb.Weaviate.Alpha < 0 || kb.Weaviate.Alpha > 1:
		return fmt.Errorf("knowledge_base.weaviate.alpha: %v is outside 0..1", kb.Weaviate.Alpha)
	case !weaviateClassRE.MatchString(kb.Weaviate.Collection):
		return fmt.Errorf("knowledge_base.weaviate.collection: %q must start with an upper-case letter and hold only letters, digits and _", kb.Weaviate.Collection)
	case kb.TopK < 1 || kb.TopK > 20:
		return errors.New("knowledge_base.top_k: must be between 1 and 20")
	}
	for i, s := range kb.Sources {
		if s == "" {
			return fmt.Errorf("knowledge_base.sources[%d]: empty", i)
		}
	}
	for i, g := range kb.Synonyms {
		if len(g) < 2 {
			return fmt.Errorf("knowledge_base.synonyms[%d]: a group needs at least two entries", i)
		}
		for j, e := range g {
			if !strings.ContainsFunc(e, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
				return fmt.Errorf("knowledge_base.synonyms[%d][%d]: %q has no word", i, j, e)
			}
		}
	}
	return nil
}
