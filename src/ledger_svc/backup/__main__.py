from ledger_svc.backup.main import main

main()
