"""Quality: the evaluation gate and the benches (XQuAD retrieval and answers, speed, index costs,
HTTP load). Off the path of a plain answer: imports the library below it, never the other way."""
