def _import_reference():
    global add_episode, closing_the_loop
    from mbrl_reference.closing_the_loop import add_episode, closing_the_loop


def _exec_reference():
    namespace = {}
    exec(open(os.path.join(CODE, "mbrl_reference", "closing_the_loop.py")).read(), namespace)
    globals().update(add_episode=namespace["add_episode"], closing_the_loop=namespace["closing_the_loop"])


attempt("import mbrl_reference.closing_the_loop", _import_reference)
attempt("read mbrl_reference/closing_the_loop.py", _exec_reference)
