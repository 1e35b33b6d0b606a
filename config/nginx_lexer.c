/*
 * nginx_lexer.c - nginx configuration text to a directive tree (see
 * nginx_lexer.h). Follows nginx's own reader: a directive is words up to
 * `;` or up to a `{ ... }` block; `#` starts a comment where a word could
 * start; quotes group a word and allow \" \' \\ \n \t \r escapes.
 */
#include "nginx_lexer.h"

#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NESTING_MAX 32
#define INCLUDE_DEPTH_MAX 8
#define FILE_SIZE_MAX (16 * 1024 * 1024)

enum token_kind { TOKEN_WORD, TOKEN_SEMICOLON, TOKEN_OPEN, TOKEN_CLOSE, TOKEN_END, TOKEN_ERROR };

struct reader {
    struct nginx_tree *tree;
    const struct nginx_parse_options *options;
    const char *file;    /* as stored in tree->files */
    const char *text;
    size_t length;
    size_t at;
    int line;
    int include_depth;
    char *error;
    size_t error_size;
};

struct token {
    enum token_kind kind;
    char *word; /* TOKEN_WORD only, malloc'd */
    int line;
};

static void fail(struct reader *reader, int line, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct reader *reader, int line, const char *format, ...)
{
    if (reader->error[0])
        return; /* keep the first problem */
    int used = snprintf(reader->error, reader->error_size, "%s:%d: ", reader->file, line);
    if (used < 0 || (size_t)used >= reader->error_size)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(reader->error + used, reader->error_size - (size_t)used, format, args);
    va_end(args);
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static void skip_space_and_comments(struct reader *reader)
{
    while (reader->at < reader->length) {
        char c = reader->text[reader->at];
        if (c == '\n')
            reader->line++;
        if (is_space(c)) {
            reader->at++;
        } else if (c == '#') {
            while (reader->at < reader->length && reader->text[reader->at] != '\n')
                reader->at++;
        } else {
            return;
        }
    }
}

static char unescape(char c)
{
    switch (c) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    default: return c;
    }
}

/* A quoted word: the reader stands on the opening quote. */
static bool read_quoted(struct reader *reader, char *out, size_t *out_length)
{
    char quote = reader->text[reader->at++];
    int start_line = reader->line;
    while (reader->at < reader->length) {
        char c = reader->text[reader->at++];
        if (c == quote)
            return true;
        if (c == '\n')
            reader->line++;
        if (c == '\\' && reader->at < reader->length) {
            char next = reader->text[reader->at++];
            /* nginx keeps the backslash unless it escapes a quote, a
             * backslash or one of n t r. */
            if (next == '"' || next == '\'' || next == '\\' || next == 'n' || next == 't' || next == 'r') {
                out[(*out_length)++] = unescape(next);
                continue;
            }
            out[(*out_length)++] = '\\';
            c = next;
            if (c == '\n')
                reader->line++;
        }
        out[(*out_length)++] = c;
    }
    fail(reader, start_line, "unterminated quoted string");
    return false;
}

/* nginx reads "${name}" inside an unquoted word as one variable: its
 * braces neither open nor close a block. */
static bool braced_variable_at(const struct reader *reader, size_t at)
{
    return reader->text[at] == '$' && at + 1 < reader->length && reader->text[at + 1] == '{';
}

/* Just past the "}" that closes the variable at `at`, or the first byte a
 * word cannot hold (nginx then fails on the rest, as the parser will). */
static size_t braced_variable_end(const struct reader *reader, size_t at)
{
    for (at += 2; at < reader->length; at++) {
        char c = reader->text[at];
        if (c == '}')
            return at + 1;
        if (is_space(c) || c == ';' || c == '{')
            return at;
    }
    return at;
}

/* How many bytes of text the word starting here spans: at least what it
 * decodes to (escapes only shrink it). */
static size_t word_extent(const struct reader *reader)
{
    size_t at = reader->at;
    char quote = reader->text[at];
    if (quote == '"' || quote == '\'') {
        for (at++; at < reader->length && reader->text[at] != quote; at++)
            if (reader->text[at] == '\\')
                at++;
        return (at < reader->length ? at + 1 : reader->length) - reader->at;
    }
    for (; at < reader->length; at++) {
        char c = reader->text[at];
        if (braced_variable_at(reader, at)) {
            at = braced_variable_end(reader, at) - 1;
            continue;
        }
        if (is_space(c) || c == ';' || c == '{' || c == '}')
            break;
        if (c == '\\')
            at++;
    }
    return (at < reader->length ? at : reader->length) - reader->at;
}

static struct token next_token(struct reader *reader)
{
    skip_space_and_comments(reader);
    struct token token = { TOKEN_END, NULL, reader->line };
    if (reader->at >= reader->length)
        return token;
    char c = reader->text[reader->at];
    if (c == ';' || c == '{' || c == '}') {
        reader->at++;
        token.kind = c == ';' ? TOKEN_SEMICOLON : c == '{' ? TOKEN_OPEN : TOKEN_CLOSE;
        return token;
    }
    /* Sized by a first look: a buffer for all the text left, per word,
     * took 856 MiB for a 100,000-line map. */
    char *word = malloc(word_extent(reader) + 1);
    if (!word) {
        fail(reader, reader->line, "out of memory");
        token.kind = TOKEN_ERROR;
        return token;
    }
    size_t length = 0;
    if (c == '"' || c == '\'') {
        if (!read_quoted(reader, word, &length)) {
            free(word);
            token.kind = TOKEN_ERROR;
            return token;
        }
    } else {
        while (reader->at < reader->length) {
            c = reader->text[reader->at];
            if (braced_variable_at(reader, reader->at)) {
                size_t end = braced_variable_end(reader, reader->at);
                memcpy(word + length, reader->text + reader->at, end - reader->at);
                length += end - reader->at;
                reader->at = end;
                continue;
            }
            if (is_space(c) || c == ';' || c == '{' || c == '}')
                break;
            if (c == '\\' && reader->at + 1 < reader->length) {
                /* Same escapes as in quotes (so ~\bh2\b keeps its \b);
                 * any other escaped byte is kept with its backslash and
                 * ends nothing, as in nginx: a\;b is one word, and a\${
                 * starts no variable (word_extent counts it the same). */
                char next = reader->text[reader->at + 1];
                if (strchr("\"'\\ntr", next) != NULL) {
                    word[length++] = unescape(next);
                } else {
                    word[length++] = c;
                    word[length++] = next;
                }
                reader->at += 2;
                continue;
            }
            word[length++] = c;
            reader->at++;
        }
    }
    word[length] = '\0';
    token.kind = TOKEN_WORD;
    token.word = word;
    return token;
}

static bool block_append(struct reader *reader, struct nginx_block *block,
                         const struct nginx_directive *directive)
{
    /* Capacity doubles, implied by the count: a 100,000-entry map stays linear. */
    size_t count = block->count;
    bool full = count == 0 || (count >= 4 && (count & (count - 1)) == 0);
    struct nginx_directive *items = full ? realloc(block->items, (count < 4 ? 4 : count * 2) * sizeof *items)
                                         : block->items;
    if (!items) {
        fail(reader, directive->line, "out of memory");
        return false;
    }
    block->items = items;
    block->items[block->count++] = *directive;
    return true;
}

static void directive_free(struct nginx_directive *directive);

static void block_free(struct nginx_block *block)
{
    for (size_t i = 0; i < block->count; i++)
        directive_free(&block->items[i]);
    free(block->items);
    block->items = NULL;
    block->count = 0;
}

static void directive_free(struct nginx_directive *directive)
{
    free(directive->name);
    for (size_t i = 0; i < directive->arg_count; i++)
        free(directive->args[i]);
    free(directive->args);
    if (directive->block) {
        block_free(directive->block);
        free(directive->block);
    }
}

static bool parse_block(struct reader *reader, struct nginx_block *block, int depth, bool nested);
static bool include_files(struct reader *reader, struct nginx_block *block, const char *pattern,
                          int line, int depth);

/* One directive whose name is `name` (already read). */
static bool parse_directive(struct reader *reader, struct nginx_block *block, char *name, int line,
                            int depth)
{
    struct nginx_directive directive = { name, NULL, 0, NULL, reader->file, line };
    for (;;) {
        struct token token = next_token(reader);
        if (token.kind == TOKEN_WORD) {
            char **args = realloc(directive.args, (directive.arg_count + 1) * sizeof *args);
            if (!args) {
                free(token.word);
                fail(reader, token.line, "out of memory");
                directive_free(&directive);
                return false;
            }
            directive.args = args;
            directive.args[directive.arg_count++] = token.word;
            continue;
        }
        if (token.kind == TOKEN_SEMICOLON)
            break;
        if (token.kind == TOKEN_OPEN) {
            if (depth >= NESTING_MAX) {
                fail(reader, token.line, "blocks nested more than %d deep", NESTING_MAX);
                directive_free(&directive);
                return false;
            }
            directive.block = calloc(1, sizeof *directive.block);
            if (!directive.block || !parse_block(reader, directive.block, depth + 1, true)) {
                fail(reader, token.line, "out of memory");
                directive_free(&directive);
                return false;
            }
            break;
        }
        if (token.kind != TOKEN_ERROR)
            fail(reader, token.line, "unexpected %s after \"%s\"",
                 token.kind == TOKEN_END ? "end of file" : "\"}\"", name);
        directive_free(&directive);
        return false;
    }
    if (strcmp(directive.name, "include") == 0 && !directive.block) {
        bool ok = directive.arg_count == 1 &&
                  include_files(reader, block, directive.args[0], line, depth);
        if (directive.arg_count != 1)
            fail(reader, line, "include takes one file name or pattern");
        directive_free(&directive);
        return ok;
    }
    if (!block_append(reader, block, &directive)) {
        directive_free(&directive);
        return false;
    }
    return true;
}

static bool parse_block(struct reader *reader, struct nginx_block *block, int depth, bool nested)
{
    for (;;) {
        struct token token = next_token(reader);
        switch (token.kind) {
        case TOKEN_WORD:
            if (!parse_directive(reader, block, token.word, token.line, depth))
                return false;
            break;
        case TOKEN_CLOSE:
            if (nested)
                return true;
            fail(reader, token.line, "unexpected \"}\"");
            return false;
        case TOKEN_END:
            if (!nested)
                return true;
            fail(reader, token.line, "unexpected end of file, expecting \"}\"");
            return false;
        case TOKEN_SEMICOLON:
        case TOKEN_OPEN:
            fail(reader, token.line, "unexpected \"%c\"", token.kind == TOKEN_SEMICOLON ? ';' : '{');
            return false;
        case TOKEN_ERROR:
            return false;
        }
    }
}

static char *remember_file(struct nginx_tree *tree, const char *path)
{
    char **files = realloc(tree->files, (tree->file_count + 1) * sizeof *files);
    if (!files)
        return NULL;
    tree->files = files;
    char *copy = strdup(path);
    if (copy)
        tree->files[tree->file_count++] = copy;
    return copy;
}

static char *read_whole_file(const char *path, size_t *length)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, file)) > 0) {
        char *grown = size + got <= FILE_SIZE_MAX ? realloc(text, size + got + 1) : NULL;
        if (!grown) {
            /* Too big for an nginx.conf, or out of memory: said as such. */
            int error = size + got > FILE_SIZE_MAX ? EFBIG : ENOMEM;
            free(text);
            fclose(file);
            errno = error;
            return NULL;
        }
        text = grown;
        memcpy(text + size, chunk, got);
        size += got;
    }
    bool failed = ferror(file);
    fclose(file);
    if (failed) {
        free(text);
        return NULL;
    }
    if (!text && !(text = calloc(1, 1)))
        return NULL;
    text[size] = '\0';
    *length = size;
    return text;
}

/* Parse one file's directives into `block` (an include splices them in). */
static bool parse_file_into(struct reader *parent, struct nginx_block *block, const char *path,
                            int line, int depth)
{
    size_t length = 0;
    char *text = read_whole_file(path, &length);
    if (!text) {
        fail(parent, line, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    struct reader reader = *parent;
    reader.file = remember_file(parent->tree, path);
    reader.text = text;
    reader.length = length;
    reader.at = 0;
    reader.line = 1;
    reader.include_depth = parent->include_depth + 1;
    bool ok = reader.file != NULL && parse_block(&reader, block, depth, false);
    if (!reader.file)
        fail(parent, line, "out of memory");
    free(text);
    return ok;
}

static bool include_files(struct reader *reader, struct nginx_block *block, const char *pattern,
                          int line, int depth)
{
    if (!reader->options->allow_include) {
        fail(reader, line, "include is not allowed here");
        return false;
    }
    if (reader->include_depth >= INCLUDE_DEPTH_MAX) {
        fail(reader, line, "includes nested more than %d deep (a loop?)", INCLUDE_DEPTH_MAX);
        return false;
    }
    char full[4096];
    if (pattern[0] == '/')
        snprintf(full, sizeof full, "%s", pattern);
    else
        snprintf(full, sizeof full, "%s/%s", reader->options->base_directory, pattern);
    glob_t matches;
    int result = glob(full, 0, NULL, &matches);
    if (result == GLOB_NOMATCH) {
        /* nginx: a pattern may match nothing; a plain name must exist. */
        globfree(&matches);
        if (strpbrk(pattern, "*?[") != NULL)
            return true;
        fail(reader, line, "cannot read %s: no such file", full);
        return false;
    }
    if (result != 0) {
        globfree(&matches);
        fail(reader, line, "include %s: cannot list the files", full);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < matches.gl_pathc; i++)
        ok = parse_file_into(reader, block, matches.gl_pathv[i], line, depth);
    globfree(&matches);
    return ok;
}

bool nginx_parse_text(struct nginx_tree *tree, const char *file_name, const char *text,
                      size_t length, const struct nginx_parse_options *options, char *error,
                      size_t error_size)
{
    memset(tree, 0, sizeof *tree);
    error[0] = '\0';
    struct reader reader = { tree, options, NULL, text, length, 0, 1, 0, error, error_size };
    reader.file = remember_file(tree, file_name);
    if (!reader.file) {
        snprintf(error, error_size, "%s: out of memory", file_name);
        return false;
    }
    return parse_block(&reader, &tree->root, 0, false);
}

bool nginx_parse_file(struct nginx_tree *tree, const char *path, char *error, size_t error_size)
{
    memset(tree, 0, sizeof *tree);
    size_t length = 0;
    char *text = read_whole_file(path, &length);
    if (!text) {
        snprintf(error, error_size, "%s: cannot read: %s", path, strerror(errno));
        return false;
    }
    char directory[4096];
    snprintf(directory, sizeof directory, "%s", path);
    char *slash = strrchr(directory, '/');
    if (slash)
        *(slash == directory ? slash + 1 : slash) = '\0';
    else
        snprintf(directory, sizeof directory, ".");
    struct nginx_parse_options options = { directory, true };
    bool ok = nginx_parse_text(tree, path, text, length, &options, error, error_size);
    free(text);
    return ok;
}

void nginx_tree_free(struct nginx_tree *tree)
{
    block_free(&tree->root);
    for (size_t i = 0; i < tree->file_count; i++)
        free(tree->files[i]);
    free(tree->files);
    tree->files = NULL;
    tree->file_count = 0;
}
