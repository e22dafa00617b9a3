# As many processes as the machine allows, each in its own session, sleeping for an hour.
born = 0
for _ in range(400):
    try:
        pid = os.fork()
    except OSError as error:
        print(f"fork refused after {born} children: {type(error).__name__}")
        break
    if pid == 0:
        try:
            os.setsid()
            os.execv("/bin/sleep", ["{MARKER}-sleeper", "3600"])
        finally:
            os._exit(0)
    born += 1
print(f"{born} sleepers left behind")
