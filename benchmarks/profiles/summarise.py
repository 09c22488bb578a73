"""Share of py-spy samples (raw format) in which each frame appears, for the frames whose names contain a keyword.

    python benchmarks/profiles/summarise.py PROFILE.txt KEYWORD...
"""
import sys
from collections import Counter
tot = Counter(); n = 0
for line in open(sys.argv[1]):
    stack, count = line.rsplit(' ', 1); count = int(count); n += count
    for f in set(stack.split(';')): tot[f] += count
keep = sys.argv[2:] 
for f, c in tot.most_common(60):
    if any(k in f for k in keep):
        print(f"{c/n:6.1%}  {f[:140]}")
