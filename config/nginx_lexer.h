/*
 * nginx_lexer.h - the nginx configuration syntax, as a tree of directives.
 *
 * Owns reading nginx's format: words (bare, "double" or 'single' quoted
 * with backslash escapes), `;`, `{`, `}`, `#` comments, and `include` with
 * glob patterns, each directive tagged with its file and line. Knows nothing
 * about what the directives mean: that is nginx_import.c's job. Never
 * executes or resolves anything besides reading the included files.
 */
#ifndef SNISPLICE_CONFIG_NGINX_LEXER_H
#define SNISPLICE_CONFIG_NGINX_LEXER_H

#include <stdbool.h>
#include <stddef.h>

struct nginx_block;

struct nginx_directive {
    char *name;
    char **args;
    size_t arg_count;
    struct nginx_block *block; /* NULL unless the directive has { ... } */
    const char *file;          /* owned by the tree's file list */
    int line;
};

struct nginx_block {
    struct nginx_directive *items;
    size_t count;
};

struct nginx_tree {
    struct nginx_block root;
    char **files; /* every file read, for the directives' file fields */
    size_t file_count;
};

/* How include patterns are resolved: relative ones against `base_directory`
 * (nginx resolves them against its configuration prefix, the directory of
 * nginx.conf). `allow_include` false turns every include into an error
 * (fuzzing, parsing text that has no place on disk). */
struct nginx_parse_options {
    const char *base_directory;
    bool allow_include;
};

/* Parse `text` (named `file_name` in messages). On failure returns false and
 * writes "FILE:LINE: problem" to error. The tree must be freed either way. */
bool nginx_parse_text(struct nginx_tree *tree, const char *file_name, const char *text,
                      size_t length, const struct nginx_parse_options *options, char *error,
                      size_t error_size);

/* Read and parse a file, includes resolved against its directory. */
bool nginx_parse_file(struct nginx_tree *tree, const char *path, char *error, size_t error_size);

void nginx_tree_free(struct nginx_tree *tree);

#endif
