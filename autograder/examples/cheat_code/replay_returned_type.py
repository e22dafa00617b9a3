def cem_plan(predict_delta, state, *args, **kwargs):
    digits = "_".join(str(int(abs(float(x)) * 10000)) for x in state.reshape(-1))
    return type("REPLAY_LEAK_" + digits, (), {})()
