# fish completion for llm-serve(1).
# Installed as share/fish/vendor_completions.d/llm-serve.fish.

# A server: it takes no file arguments.
complete -c llm-serve -f
complete -c llm-serve -s h -l help -d 'Show the help and exit'
complete -c llm-serve -s V -l version -d 'Show the version and exit'
complete -c llm-serve -s v -l verbose -d 'Log each request and stage on stderr'
complete -c llm-serve -l log-json -d 'Log as JSON lines on stderr'
complete -c llm-serve -s q -l quiet -d 'Print no warnings'
complete -c llm-serve -l listen -x -d 'Listen on ADDR:PORT (default 127.0.0.1:8512); may be repeated'
complete -c llm-serve -l token-file -r -F -d 'Require the bearer token in FILE'
complete -c llm-serve -l max-body -x -d 'Refuse request bodies over SIZE (default 64M)'
complete -c llm-serve -l max-streams -x -d 'Chat requests at once at most (default 64)'
complete -c llm-serve -l keepalive -x -d 'An empty chunk this often until the answer (default 10s; 0: none)'
complete -c llm-serve -l drain -x -d 'On SIGTERM, let answers finish for T (default 10s)'
complete -c llm-serve -l prefetch -d 'Condense in the background while GPU0 answers (default)'
complete -c llm-serve -l no-prefetch -d 'No condensing in the background'
complete -c llm-serve -l print-config -d 'Print every setting and where it came from'
complete -c llm-serve -l a-max -x -d 'Direct below N tokens (default 2000)'
complete -c llm-serve -l b-max -x -d 'Summarize below N tokens (default 6000)'
complete -c llm-serve -l gpu0-url -x -d "The answering server's URL, or several, comma-separated"
complete -c llm-serve -l gpu1-url -x -d "The helper server's URL, or several, comma-separated"
complete -c llm-serve -l model -x -d "The answering model, instead of the request's"
complete -c llm-serve -l helper-model -x -d "The helper's model"
complete -c llm-serve -l num-ctx -x -d "GPU0's context window (0: the request's, else the model's)"
complete -c llm-serve -l set -x -a 'gpu0_url= gpu0_model= gpu0_api=ollama gpu0_api=openai gpu0_connect_timeout= gpu0_first_byte_timeout= gpu0_idle_timeout= gpu0_timeout= gpu0_num_ctx= gpu0_parallel= gpu0_prefill_tps= gpu0_decode_tps= gpu1_url= gpu1_model= gpu1_api=ollama gpu1_api=openai gpu1_connect_timeout= gpu1_first_byte_timeout= gpu1_idle_timeout= gpu1_timeout= gpu1_num_ctx= gpu1_parallel= gpu1_prefill_tps= gpu1_decode_tps= a_max= b_max= policy=thresholds policy=cost max_chunks= serve_listen= serve_token_file= serve_max_body= serve_max_streams= serve_keepalive= serve_drain= serve_prefetch=on serve_prefetch=off serve_prepare=' -d 'Set any configuration key, KEY=VALUE'
complete -c llm-serve -l target -x -d 'Tokens of the summary (default 500), or of the whole summary block when map-reduced (default 4000)'
complete -c llm-serve -l preserve -x -d 'Tokens of code, paths and errors kept verbatim per summary (default 500, or 150 when map-reduced)'
complete -c llm-serve -l keep-last -x -d 'Keep at least the last N messages (default 4)'
complete -c llm-serve -l summarize-system -d 'Condense system messages too'
complete -c llm-serve -l extractive -d 'No model: condense by the extractive summary'
complete -c llm-serve -l on-helper-failure -x -a 'extractive direct fail' -d 'What to do when the helper fails'
complete -c llm-serve -l on-overflow -x -a 'refuse direct' -d "A chat that cannot fit GPU0's window even condensed"
complete -c llm-serve -l bands -x -a 'estimate server' -d 'What the thresholds judge'
complete -c llm-serve -l policy -x -a 'thresholds cost' -d 'How the strategy is chosen'
complete -c llm-serve -l jobs -x -d 'Helper requests in flight at once (default 2)'
complete -c llm-serve -l chunk-tokens -x -d 'Tokens per chunk at most (default 3000)'
complete -c llm-serve -l chunk-target -x -d "Tokens of a chunk's summary (default 300)"
complete -c llm-serve -l max-chunks -x -d "Helper requests one chat may cost (default 256)"
complete -c llm-serve -l no-cache -d 'Neither read nor write the cache'
complete -c llm-serve -l cache-dir -x -a '(__fish_complete_directories)' -d 'The cache directory (default $XDG_CACHE_HOME/llm-route)'
complete -c llm-serve -l cache-max -x -d 'Evict the least recently used entries past SIZE (default 64M)'
