// GNU readline and history, for the REPL.
#include <stdio.h>
#include <readline/readline.h>
#include <readline/history.h>
